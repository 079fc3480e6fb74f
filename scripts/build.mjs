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
  return join(root, 'build', kind ? `shim-${kind}` : 'shim');
}

function buildShim() {
  const out = shimBuildDir();
  const vars = [`BUILD=${out}`];
  if (sanitize) vars.push(`SANITIZE=${sanitize}`);
  run('make', ['-C', join(root, 'native', 'shim'), '-j2', ...vars, 'all']);
}

function buildAddon() {
  if (!existsSync(join(root, 'binding.gyp'))) return;
  run(process.execPath, [join(root, 'node_modules', 'node-gyp-build', 'bin.js')]);
}

function buildTypeScript() {
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
}

try {
  buildShim();
  if (!shimOnly && !sanitize) {
    buildAddon();
    buildTypeScript();
  }
} catch (e) {
  console.error(`hotbackup build: ${e.message}`);
  process.exit(1);
}
