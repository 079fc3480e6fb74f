// `hotbackup demo`, as README's first command runs it: a real process, the real shim, the bank
// workload; it must pass its own checks and leave nothing behind.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cliEnv, cliProcess, needShim, oneJson, scratch } from './cli-helpers.js';

test('hotbackup demo backs up a busy SQLite database and verifies it (exit 0)', async (t) => {
  if (!needShim(t)) return;
  const dir = scratch(t);
  const r = await cliProcess(['demo'], cliEnv(join(dir, 'cat.db')));
  assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  assert.match(r.stdout, /integrity_check: ok/);
  assert.match(r.stdout, /invariant: ok/);
  assert.match(r.stdout, /missing from backup: 0/);
  assert.match(r.stdout, /RESULT: the backup is a consistent point-in-time image/);
  const during = /writes during the backup: (\d+) transfers/.exec(r.stdout);
  assert.ok(during, r.stdout);
  const workdir = /scratch directory (\S+)/.exec(r.stderr)?.[1];
  assert.ok(workdir, r.stderr);
  assert.ok(!existsSync(workdir), `the demo left ${workdir} behind`);
});

test('hotbackup demo --json: one JSON report', async (t) => {
  if (!needShim(t)) return;
  const dir = scratch(t);
  const r = await cliProcess(['demo', '--json', '--journal', 'delete', '--warmup', '500'], cliEnv(join(dir, 'cat.db')));
  assert.equal(r.code, 0, r.stderr);
  const doc = oneJson(r);
  assert.equal(doc.ok, true);
  assert.equal(doc.check.ok, true);
  assert.equal(doc.check.integrityOk, true);
  assert.equal(doc.check.missingAcknowledged.length, 0);
  assert.ok(doc.backup.bytes > 0 && doc.backup.cut_at > 0);
});
