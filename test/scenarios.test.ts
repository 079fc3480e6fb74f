// Runs the shim's native scenario and fault-injection test programs (native/shim/tests/,
// built by `make -C native/shim BUILD=... tests`) from the release, ASan+UBSan and TSan
// builds, each program as its own subtest. A program prints "ok N - name" / "not ok N - name"
// per test and exits non-zero on any failure; its whole output is shown when it fails.
//
// Under CI=true a missing program is a failure; locally it is a loud skip. With
// HOTBACKUP_TEST_SANITIZERS=0 (`npm test -- --no-sanitizers`) the sanitizer builds are skipped.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runNativeProgram } from './native-helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The programs of native/shim/tests/ this file runs (tokubackup-lessons.md §4.4, §5.3; issue 2). */
const PROGRAMS = [
  'test_validation', // start requests, bad requests, the control socket (§4.4 A)
  'test_capture', // writes during/after the copy, §5.3 rows 1-6, every write path (§4.4 B)
  'test_namespace', // rename/unlink/mkdir/rmdir/links/symlinks, §5.3 rows 7-14 (§4.4 C)
  'test_races', // pause-point races, stress, features (§4.4 D, F, G)
  'test_process', // exported symbols, children, fork, native AIO disabled
  'test_faults', // ENOSPC/EIO on every k-th backup-side call (§4.4 E)
  'test_reference', // the byte-exact reference at the cut: equal under load, able to see a torn image, stdio flushes
];

const BUILDS: { name: string; dir: string; make: string; sanitizer: boolean }[] = [
  { name: 'release', dir: 'build/shim', make: 'make -C native/shim BUILD=$PWD/build/shim tests', sanitizer: false },
  {
    name: 'asan',
    dir: 'build/shim-asan',
    make: 'make -C native/shim BUILD=$PWD/build/shim-asan SANITIZE=address tests',
    sanitizer: true,
  },
  {
    name: 'tsan',
    dir: 'build/shim-tsan',
    make: 'make -C native/shim BUILD=$PWD/build/shim-tsan SANITIZE=thread tests',
    sanitizer: true,
  },
];

const CI = process.env.CI === 'true';
const sanitizersOff = process.env.HOTBACKUP_TEST_SANITIZERS === '0';
// Generous bounds: a program that hangs (a deadlock) is killed and reported, never waited on forever.
const TIMEOUT_MS = { release: 15 * 60_000, asan: 30 * 60_000, tsan: 45 * 60_000 } as Record<string, number>;

for (const b of BUILDS) {
  describe(`shim scenarios (${b.name} build)`, () => {
    for (const prog of PROGRAMS) {
      const bin = join(root, b.dir, 'tests', prog);
      test(`${prog} [${b.name}]`, { timeout: TIMEOUT_MS[b.name] + 60_000 }, async (t) => {
        if (b.sanitizer && sanitizersOff) {
          t.skip('sanitizer builds disabled (HOTBACKUP_TEST_SANITIZERS=0)');
          return;
        }
        if (!existsSync(bin)) {
          const msg = `${bin} is not built; build it with: ${b.make}`;
          if (CI) assert.fail(`CI=true: ${msg}`);
          console.warn(`\n*** SKIPPING ${prog} [${b.name}]: ${msg} ***\n`);
          t.skip(msg);
          return;
        }
        const r = await runNativeProgram(bin, [], b.name, `hbt-${b.name}-`, TIMEOUT_MS[b.name]);
        const failed = r.output.split('\n').filter((l) => l.startsWith('not ok '));
        for (const l of failed) t.diagnostic(l);
        const summary = r.output.split('\n').find((l) => l.startsWith('# pass ')) ?? '(no summary line)';
        t.diagnostic(summary);
        if (r.timedOut || r.code !== 0) {
          const why = r.timedOut
            ? `killed after ${TIMEOUT_MS[b.name] / 60_000} min (hung?)`
            : r.signal
              ? `killed by ${r.signal}`
              : `exit code ${r.code}`;
          assert.fail(`${prog} [${b.name}] failed: ${why}; ${summary}\n--- output ---\n${r.output}`);
        }
        assert.ok(summary.startsWith('# pass '), `${prog} printed no summary:\n${r.output}`);
        assert.equal(failed.length, 0, r.output);
      });
    }
  });
}
