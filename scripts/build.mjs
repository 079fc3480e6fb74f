#!/usr/bin/env node
// Builds everything `npm install` must produce: the shim (make + g++, no Node dependency),
// the addon (node-gyp-build, when binding.gyp is present) and the TypeScript control plane.
// Usage: node scripts/build.mjs [--sanitize=address|thread] [--shim-only]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const sanitize = args.find((a) => a.startsWith('--sanitize='))?.split('=')[1];
const shimOnly = args.includes('--shim-only');

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message} (is it installed?)`);
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed with exit code ${r.status}`);
}

export function shimBuildDir(kind = sanitize) {
  const suffix = { address: 'asan', thread: 'tsan' }[kind] ?? kind;
  return join(root, 'build', kind ? `shim-${suffix}` : 'shim');
}

function buildShim() {
  const out = shimBuildDir();
  const vars = [`BUILD=${out}`];
  if (sanitize) vars.push(`SANITIZE=${sanitize}`);
  run('make', ['-C', join(root, 'native', 'shim'), '-j2', ...vars, 'all']);
}

// node-gyp-build builds with `node-gyp rebuild`, whose clean step removes all of build/: the
// addon is therefore built before the shim (whose output also lives in build/). Outside npm
// (`node scripts/build.mjs`), node-gyp and Node's headers are found the way npm would find them.
function buildAddon() {
  if (!existsSync(join(root, 'binding.gyp'))) return;
  const env = { ...process.env };
  const prefix = join(dirname(process.execPath), '..');
  const paths = [join(root, 'node_modules', '.bin')];
  const npmGyp = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin');
  if (existsSync(npmGyp)) {
    // npm's bundled node-gyp, as node-gyp-bin/node-gyp so `node-gyp` resolves.
    paths.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', '@npmcli', 'run-script', 'lib', 'node-gyp-bin'));
    env.npm_config_node_gyp ??= join(npmGyp, 'node-gyp.js');
  }
  env.PATH = [...paths, env.PATH ?? ''].join(':');
  if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node.h'))) env.npm_config_nodedir = prefix;
  run(process.execPath, [join(root, 'node_modules', 'node-gyp-build', 'bin.js')], { env });
}

function buildTypeScript() {
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
}

try {
  if (!shimOnly && !sanitize) buildAddon();
  buildShim();
  if (!shimOnly && !sanitize) buildTypeScript();
} catch (e) {
  console.error(`hotbackup build: ${e.message}`);
  process.exit(1);
}
