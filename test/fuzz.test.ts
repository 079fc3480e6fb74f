// The shim's libFuzzer targets (native/shim/fuzz/: the JSON reader/writer, path containment, the
// whole request handler with real backups in a scratch directory), each run for a bounded number
// of executions from its committed seed corpus, under ASan+UBSan. `npm run fuzz` runs them long.
// Needs clang++ and libclang-rt-dev: under CI=true their absence fails; locally a loud skip.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import test from 'node:test';
// @ts-expect-error a plain ES module script without types
import { buildFuzzTargets, runFuzzTarget } from '../scripts/fuzz.mjs';

const RUNS: Record<string, number> = { json: 200_000, paths: 200_000, request: 1_500 };

const hasClang = spawnSync('clang++', ['--version']).status === 0;
let skip: string | false = false;
if (!hasClang) {
  const msg = 'clang++ is missing (apt-get install clang libclang-rt-14-dev)';
  if (process.env.CI === 'true') throw new Error(`test/fuzz.test.ts: ${msg}. CI=true: fuzzing that cannot run is a failure.`);
  process.stderr.write(`\n*** SKIPPING the fuzz targets: ${msg} ***\n\n`);
  skip = `FUZZING SKIPPED: ${msg}`;
}

test.before(() => { if (!skip) buildFuzzTargets(); });

for (const [name, runs] of Object.entries(RUNS)) {
  test(`fuzz target ${name}: ${runs} executions, no crash, leak, undefined behaviour or broken property`, { skip, timeout: 600_000 }, (t) => {
    const { ok, output } = runFuzzTarget(name, [`-runs=${runs}`]);
    const stats = (output as string).split('\n').filter((l) => /^stat::(number_of_executed_units|new_units_added|peak_rss_mb)|^Done/.test(l));
    for (const s of stats) t.diagnostic(s);
    assert.ok(ok, `fuzz target ${name} found a problem:\n${(output as string).split('\n').slice(-60).join('\n')}`);
    assert.ok(stats.some((s) => s.includes(`number_of_executed_units: ${runs}`)), `fuzz target ${name} did not run ${runs} inputs:\n${stats.join('\n')}`);
  });
}
