#!/usr/bin/env node
// npm run fuzz -- [--runs N | --seconds S] [target ...]
// Builds the shim's libFuzzer targets (native/shim/fuzz/, clang++ with ASan+UBSan) into
// build/fuzz and runs each on a working copy of its committed seed corpus (new inputs found are
// kept in build/fuzz/corpus/<target>, crashes in build/fuzz/crashes/). Default: 10 minutes per
// target. A finding exits non-zero and names the reproducer file; make it a regression test.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const TARGETS = { json: 'fuzz_json', paths: 'fuzz_paths', request: 'fuzz_request' };

export function buildFuzzTargets() {
  const r = spawnSync('make', ['-C', join(root, 'native', 'shim'), '-j2', `BUILD=${join(root, 'build', 'fuzz')}`, 'fuzz'],
    { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building the fuzz targets failed (they need clang++ and libclang-rt-dev: apt-get install clang libclang-rt-14-dev)');
}

/** Runs one target; `limit` is ['-runs=N'] or ['-max_total_time=S']. Returns { ok, output }. */
export function runFuzzTarget(name, limit) {
  const corpus = join(root, 'build', 'fuzz', 'corpus', name);
  const crashes = join(root, 'build', 'fuzz', 'crashes', name);
  mkdirSync(crashes, { recursive: true });
  cpSync(join(root, 'native', 'shim', 'fuzz', 'corpus', name), corpus, { recursive: true });
  const r = spawnSync(join(root, 'build', 'fuzz', TARGETS[name]),
    [...limit, '-max_len=1024', `-artifact_prefix=${crashes}/`, '-print_final_stats=1', corpus],
    { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : undefined; };
  const runs = flag('--runs');
  const seconds = flag('--seconds') ?? '600';
  const names = args.length ? args : Object.keys(TARGETS);
  buildFuzzTargets();
  let failed = 0;
  for (const name of names) {
    if (!TARGETS[name]) throw new Error(`unknown target ${name} (known: ${Object.keys(TARGETS).join(', ')})`);
    const { ok, output } = runFuzzTarget(name, runs ? [`-runs=${runs}`] : [`-max_total_time=${seconds}`]);
    const stats = output.split('\n').filter((l) => /^stat::|^Done|artifact|ERROR|fuzz_/.test(l));
    console.log(`${name}: ${ok ? 'no finding' : 'FINDING'}\n  ${stats.join('\n  ')}`);
    if (!ok) failed++;
  }
  process.exit(failed ? 1 : 0);
}
