// Runs the oracle (native/shim/tests/test_oracle.cc): a randomized multi-threaded workload under
// the shim while a throttled backup runs, then a proof that the backup equals the sources'
// state at one real-time instant (DESIGN.md "Testing", invariant 1). One subtest per seed.
//
// Seeds: 1..20 on the release build (HOTBACKUP_ORACLE_SEEDS overrides: "1,5,9" or "1-40"), and
// the first 3 of them on the ASan+UBSan and TSan builds when present
// (HOTBACKUP_ORACLE_SANITIZER_SEEDS overrides; HOTBACKUP_TEST_SANITIZERS=0 skips them).
// HOTBACKUP_ORACLE_ARGS adds arguments to every run (e.g. "--threads 8 --ops 3000").
// Under CI=true a missing binary is a failure; locally it is a loud skip.
// A failing seed prints the oracle's whole report, including the command line that replays it.
// Each build also runs test_oracle_regressions: the bugs the oracle found, reduced to
// deterministic named tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type NativeResult, runNativeProgram } from './native-helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CI = process.env.CI === 'true';
const sanitizersOff = process.env.HOTBACKUP_TEST_SANITIZERS === '0';

function parseSeeds(spec: string | undefined, fallback: number[]): number[] {
  if (!spec || !spec.trim()) return fallback;
  const out: number[] = [];
  for (const part of spec.split(/[,\s]+/).filter(Boolean)) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (m) {
      for (let s = Number(m[1]); s <= Number(m[2]); s++) out.push(s);
    } else if (/^\d+$/.test(part)) {
      out.push(Number(part));
    } else {
      throw new Error(`HOTBACKUP_ORACLE_SEEDS: cannot read "${part}" (use "1,2,3" or "1-20")`);
    }
  }
  return out;
}

const SEEDS = parseSeeds(process.env.HOTBACKUP_ORACLE_SEEDS, Array.from({ length: 20 }, (_, i) => i + 1));
const SANITIZER_SEEDS = parseSeeds(process.env.HOTBACKUP_ORACLE_SANITIZER_SEEDS, SEEDS.slice(0, 3));
const EXTRA_ARGS = (process.env.HOTBACKUP_ORACLE_ARGS ?? '').split(/\s+/).filter(Boolean);

const BUILDS = [
  { name: 'release', dir: 'build/shim', make: 'make -C native/shim BUILD=$PWD/build/shim tests', sanitizer: false, seeds: SEEDS, timeoutMs: 5 * 60_000 },
  { name: 'asan', dir: 'build/shim-asan', make: 'make -C native/shim BUILD=$PWD/build/shim-asan SANITIZE=address tests', sanitizer: true, seeds: SANITIZER_SEEDS, timeoutMs: 15 * 60_000 },
  { name: 'tsan', dir: 'build/shim-tsan', make: 'make -C native/shim BUILD=$PWD/build/shim-tsan SANITIZE=thread tests', sanitizer: true, seeds: SANITIZER_SEEDS, timeoutMs: 20 * 60_000 },
];

// A failing seed keeps its tree (the oracle prints where) for inspection; a passing one has
// already removed it.
function runProgram(bin: string, args: string[], build: string, tag: string, timeoutMs: number, hooks = false): Promise<NativeResult> {
  return runNativeProgram(bin, args, build, `hbo-${build}-${tag}-`, timeoutMs,
    { hooks, keepOnFailure: true, env: (env) => { delete env.HOTBACKUP_ORACLE_ROOT; } });
}

/** Appends function and file:line to unsymbolized sanitizer frames "(module+0xOFF)" of our binaries. */
function symbolizeReport(output: string, bin: string, libDir: string): string {
  const modules: Record<string, string> = { 'libhotbackup.so': join(libDir, 'libhotbackup.so') };
  modules[bin.split('/').pop()!] = bin;
  const re = /\(([\w.+-]+)\+0x([0-9a-f]+)\)/g;
  const wanted = new Map<string, Set<string>>();
  for (const m of output.matchAll(re)) if (modules[m[1]]) (wanted.get(m[1]) ?? wanted.set(m[1], new Set()).get(m[1])!).add(m[2]);
  const names = new Map<string, string>();
  for (const [mod, offs] of wanted) {
    const list = [...offs];
    const r = spawnSync('addr2line', ['-f', '-C', '-e', modules[mod], ...list.map((o) => `0x${o}`)], { encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout) continue;
    const lines = r.stdout.split('\n');
    list.forEach((o, i) => names.set(`${mod}+${o}`, `${lines[2 * i]} ${lines[2 * i + 1]?.replace(root + '/', '')}`));
  }
  if (!names.size) return output;
  return output.replace(re, (all, mod: string, off: string) => (names.has(`${mod}+${off}`) ? `${all} ${names.get(`${mod}+${off}`)}` : all));
}

for (const b of BUILDS) {
  const bin = join(root, b.dir, 'tests', 'test_oracle');
  describe(`oracle (${b.name} build)`, () => {
    if (b.sanitizer && sanitizersOff) {
      test(`oracle on the ${b.name} build`, { skip: 'HOTBACKUP_TEST_SANITIZERS=0' }, () => {});
      return;
    }
    if (!existsSync(bin)) {
      const why = `${bin} is missing (build it: ${b.make})`;
      if (CI) {
        test(`oracle binary present (${b.name})`, () => assert.fail(why));
      } else {
        console.warn(`\n*** SKIPPING the oracle on the ${b.name} build: ${why}\n`);
        test(`oracle on the ${b.name} build`, { skip: why }, () => {});
      }
      return;
    }
    for (const seed of b.seeds) {
      test(`seed ${seed}`, { timeout: b.timeoutMs + 60_000 }, async () => {
        const r = await runProgram(bin, ['--seed', String(seed), ...EXTRA_ARGS], b.name, String(seed), b.timeoutMs);
        const out = b.name === 'release' ? r.output : symbolizeReport(r.output, bin, join(root, b.dir));
        const report = `\n--- test_oracle --seed ${seed} (${b.name}) ---\n${out}`;
        assert.ok(!r.timedOut, `the oracle did not finish within ${b.timeoutMs / 60_000} min (hung backup or deadlock)${report}`);
        assert.equal(r.signal, null, `the oracle was killed by ${r.signal}${report}`);
        assert.equal(r.code, 0, `the oracle failed (exit ${r.code})${report}`);
        assert.match(r.output, new RegExp(`^ok 1 - seed=${seed} `, 'm'), `no "ok" line in the oracle's output${report}`);
      });
    }
    const reg = join(root, b.dir, 'tests', 'test_oracle_regressions');
    test('regressions found by the oracle (test_oracle_regressions)', { timeout: b.timeoutMs + 60_000 }, async (t) => {
      if (!existsSync(reg)) {
        if (CI) assert.fail(`${reg} is missing (build it: ${b.make})`);
        console.warn(`\n*** SKIPPING the oracle regressions on the ${b.name} build: ${reg} is missing\n`);
        t.skip(`${reg} is missing`);
        return;
      }
      const r = await runProgram(reg, [], b.name, 'regressions', b.timeoutMs, true);
      const out = b.name === 'release' ? r.output : symbolizeReport(r.output, reg, join(root, b.dir));
      const report = `\n--- test_oracle_regressions (${b.name}) ---\n${out}`;
      assert.ok(!r.timedOut, `test_oracle_regressions did not finish (hang or deadlock)${report}`);
      assert.equal(r.signal, null, `killed by ${r.signal}${report}`);
      assert.doesNotMatch(r.output, /^not ok/m, `a regression failed${report}`);
      assert.equal(r.code, 0, `exit ${r.code}${report}`);
      assert.match(r.output, /^ok \d+ - /m, `no test ran${report}`);
    });
  });
}
