// Every kind of damage to a backup is found and reported precisely, with a non-zero exit; a clean
// backup verifies with exit 0. The backup is taken by the real shim (an idle Node process under
// LD_PRELOAD backs up a small tree); each case damages a fresh copy of it.
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import test from 'node:test';
import { request } from '../src/client.js';
import { shimPath } from '../src/lib-path.js';
import { verifyBackup, type VerifyProblem } from '../src/verify.js';
import { flipByte, makeTmp, runCli, shimOrSkip, spawnUnderShim, verifyJson, waitDone, waitForSocket } from './verify-helpers.js';

const skip = shimOrSkip('test/verify-corruption.test.ts');

let tmp: ReturnType<typeof makeTmp>;
let clean = '';
let copies = 0;

/** A fresh copy of the clean backup (modes, symlinks as they are). */
function copy(): string {
  const d = join(tmp.dir, `copy-${++copies}`);
  cpSync(clean, d, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  // cpSync applies the umask to directories it creates: restore the backup's modes.
  for (const dir of ['', 'sub', 'sub/deeper', 'empty-dir']) chmodSync(join(d, dir), 0o750);
  return d;
}

function only(problems: VerifyProblem[], kind: string, path: string): VerifyProblem {
  const p = problems.filter((x) => !(x.kind === 'manifest_checksum' && kind !== 'manifest_checksum'));
  assert.equal(p.length, 1, `expected exactly one ${kind} problem for ${path}, got ${JSON.stringify(problems, null, 1)}`);
  assert.equal(p[0].kind, kind);
  assert.equal(p[0].path, path);
  return p[0];
}

test.before(async () => {
  if (skip) return;
  tmp = makeTmp('hb-verify-corrupt-');
  const src = join(tmp.dir, 'src');
  mkdirSync(join(src, 'sub', 'deeper'), { recursive: true, mode: 0o750 });
  mkdirSync(join(src, 'empty-dir'), { mode: 0o750 });
  chmodSync(src, 0o750);
  for (const d of ['sub', 'sub/deeper', 'empty-dir']) chmodSync(join(src, d), 0o750);
  writeFileSync(join(src, 'a.txt'), 'hello\n', { mode: 0o640 });
  writeFileSync(join(src, 'empty'), '', { mode: 0o600 });
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
  writeFileSync(join(src, 'sub', 'b.bin'), big, { mode: 0o644 });
  writeFileSync(join(src, 'sub', 'deeper', 'c.log'), 'line\n'.repeat(1000), { mode: 0o600 });
  symlinkSync('a.txt', join(src, 'link'));
  clean = join(tmp.dir, 'backup');
  const socket = join(tmp.dir, 'hb.sock');
  const idle = await spawnUnderShim(process.env.HOTBACKUP_TEST_SHIM || shimPath(),
    ['-e', 'process.stdin.resume(); console.log("ready")'], { socket });
  try {
    await idle.waitFor((l) => l.includes('ready'), 'ready');
    await waitForSocket(socket, idle);
    await request(socket, { op: 'start', dest: clean, sources: [src] });
    const s = await waitDone(socket);
    assert.equal(s.state, 'done', JSON.stringify(s.error));
  } finally {
    await idle.stop();
  }
});

test.after(() => tmp?.cleanup());

test('a clean backup verifies: exit 0, no problems, every entry counted', { skip }, async () => {
  const { code, report, stderr } = await verifyJson(copy());
  assert.deepEqual(report.problems, [], stderr);
  assert.equal(report.status, 'verified');
  assert.equal(code, 0);
  assert.equal(report.manifest.intact, true);
  assert.deepEqual([report.checked.files, report.checked.dirs, report.checked.symlinks], [4, 3, 1]);
  assert.equal(report.checked.bytes, 6 + 300_000 + 5000);
  const human = await runCli(['verify', copy()]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /^verified .*4 files/);
});

test('one flipped byte: verify names the file and both checksums', { skip }, async () => {
  for (const offset of [0, 123_457, 299_999]) {
    const d = copy();
    flipByte(join(d, 'sub', 'b.bin'), offset);
    const { code, report } = await verifyJson(d);
    const p = only(report.problems, 'checksum', 'sub/b.bin');
    assert.notEqual(p.expected, p.actual);
    assert.equal(report.status, 'failed');
    assert.equal(code, 1);
  }
});

test('a flipped byte is found whatever the segment size and thread count', { skip }, async () => {
  const d = copy();
  flipByte(join(d, 'sub', 'b.bin'), 200_000);
  for (const [segmentBytes, threads] of [[64 * 1024, 1], [64 * 1024, 3], [1 << 20, 2]]) {
    const r = await verifyBackup(d, { segmentBytes, threads });
    only(r.problems, 'checksum', 'sub/b.bin');
  }
  const okCopy = copy();
  const r = await verifyBackup(okCopy, { segmentBytes: 64 * 1024, threads: 3 });
  assert.deepEqual(r.problems, []);
});

test('a truncated file: size problem with both sizes', { skip }, async () => {
  const d = copy();
  truncateSync(join(d, 'sub', 'b.bin'), 1000);
  const { code, report } = await verifyJson(d);
  const p = only(report.problems, 'size', 'sub/b.bin');
  assert.equal(p.expected, 300_000);
  assert.equal(p.actual, 1000);
  assert.match(p.message, /truncated/);
  assert.equal(code, 1);
});

test('a file that grew: size problem', { skip }, async () => {
  const d = copy();
  appendFileSync(join(d, 'empty'), 'x');
  const { code, report } = await verifyJson(d);
  const p = only(report.problems, 'size', 'empty');
  assert.deepEqual([p.expected, p.actual], [0, 1]);
  assert.equal(code, 1);
});

test('a deleted file, symlink or directory: missing', { skip }, async () => {
  let d = copy();
  unlinkSync(join(d, 'sub', 'deeper', 'c.log'));
  let r = await verifyJson(d);
  only(r.report.problems, 'missing', 'sub/deeper/c.log');
  assert.equal(r.code, 1);

  d = copy();
  unlinkSync(join(d, 'link'));
  r = await verifyJson(d);
  only(r.report.problems, 'missing', 'link');
  assert.equal(r.code, 1);

  d = copy();
  rmSync(join(d, 'sub'), { recursive: true });
  r = await verifyJson(d);
  const p = only(r.report.problems, 'missing', 'sub');
  assert.match(p.message, /3 entries listed under it/);
  assert.equal(r.code, 1);
});

test('an added file or directory: unlisted; hotbackup_* is allowed only at the top', { skip }, async () => {
  let d = copy();
  writeFileSync(join(d, 'sub', 'intruder.txt'), 'x');
  let r = await verifyJson(d);
  only(r.report.problems, 'unlisted', 'sub/intruder.txt');
  assert.equal(r.code, 1);

  d = copy();
  mkdirSync(join(d, 'newdir', 'inner'), { recursive: true });
  writeFileSync(join(d, 'newdir', 'inner', 'f'), 'x');
  r = await verifyJson(d);
  assert.match(only(r.report.problems, 'unlisted', 'newdir').message, /2 entries under it/);

  d = copy();
  writeFileSync(join(d, 'hotbackup_notes.txt'), 'the tool may put its own files here');
  r = await verifyJson(d);
  assert.deepEqual(r.report.problems, []);
  assert.equal(r.code, 0);

  d = copy();
  writeFileSync(join(d, 'sub', 'hotbackup_x'), 'not at the top');
  r = await verifyJson(d);
  only(r.report.problems, 'unlisted', 'sub/hotbackup_x');
});

test('an edited manifest: its checksum no longer matches', { skip }, async () => {
  const d = copy();
  const m = join(d, 'hotbackup_manifest.json');
  const text = readFileSync(m, 'utf8');
  // Claim c.log is one byte longer: still valid JSON, still a plausible manifest.
  const edited = text.replace('"size":5000,', '"size":5001,');
  assert.notEqual(edited, text);
  writeFileSync(m, edited);
  const { code, report } = await verifyJson(d);
  const kinds = report.problems.map((p: VerifyProblem) => `${p.kind}:${p.path}`).sort();
  assert.deepEqual(kinds, ['manifest_checksum:hotbackup_manifest.json', 'size:sub/deeper/c.log']);
  assert.equal(report.manifest.intact, false);
  assert.equal(code, 1);

  // A manifest that is no longer JSON: nothing can be checked against it.
  writeFileSync(m, text.slice(0, 100));
  const r2 = await verifyJson(d);
  assert.ok(r2.report.problems.some((p: VerifyProblem) => p.kind === 'manifest_invalid'), JSON.stringify(r2.report.problems));
  assert.equal(r2.code, 1);

  // A manifest whose entry escapes DEST is refused, not followed.
  const body = text.slice(0, text.lastIndexOf(',"manifest_crc32c"')).replace('"path":"a.txt"', '"path":"../../etc/passwd"');
  const { crc32cTs, hex } = await import('./verify-helpers.js');
  writeFileSync(m, `${body},"manifest_crc32c":"${hex(crc32cTs(Buffer.from(body)))}"}`);
  const r3 = await verifyJson(d);
  const kinds3 = r3.report.problems.map((p: VerifyProblem) => `${p.kind}:${p.path}`).sort();
  assert.deepEqual(kinds3, ['manifest_invalid:hotbackup_manifest.json', 'unlisted:a.txt']);
  assert.equal(r3.code, 1);
});

test('no manifest: incomplete, never verified', { skip }, async () => {
  const d = copy();
  unlinkSync(join(d, 'hotbackup_manifest.json'));
  const { code, report } = await verifyJson(d);
  assert.equal(report.status, 'incomplete');
  assert.equal(report.problems.length, 1);
  assert.equal(report.problems[0].kind, 'incomplete');
  assert.equal(code, 1);
  const human = await runCli(['verify', d]);
  assert.equal(human.code, 1);
  assert.match(human.stdout, /^INCOMPLETE /);
  assert.match(human.stderr, /incomplete backup: not verified/);
  assert.doesNotMatch(human.stdout, /verified /);
});

test('a changed mode, a retargeted symlink, a directory replaced by a file', { skip }, async () => {
  let d = copy();
  chmodSync(join(d, 'a.txt'), 0o666);
  let r = await verifyJson(d);
  const p = only(r.report.problems, 'mode', 'a.txt');
  assert.deepEqual([p.expected, p.actual], ['0640', '0666']);
  assert.equal(r.code, 1);

  d = copy();
  unlinkSync(join(d, 'link'));
  symlinkSync('sub/b.bin', join(d, 'link'));
  r = await verifyJson(d);
  only(r.report.problems, 'symlink_target', 'link');

  d = copy();
  rmSync(join(d, 'empty-dir'), { recursive: true });
  writeFileSync(join(d, 'empty-dir'), '');
  r = await verifyJson(d);
  const t = only(r.report.problems, 'type', 'empty-dir');
  assert.deepEqual([t.expected, t.actual], ['dir', 'file']);
});

// The timeout turns a hang (a FIFO opened for reading waits for a writer) into a failure.
test('a listed file replaced by a FIFO, a symlink or a directory: a type problem, and no hang on the FIFO', { skip, timeout: 120_000 }, async () => {
  // The scan opens every listed file as soon as the manifest is read, before the walk has seen
  // what is there: a FIFO must not make it wait for a writer. (That the symlink is not followed
  // is O_NOFOLLOW's; its effect is not observable here, the scan's result for it being ignored.)
  let d = copy();
  unlinkSync(join(d, 'a.txt'));
  const mk = spawnSync('mkfifo', [join(d, 'a.txt')]);
  assert.equal(mk.status, 0, String(mk.stderr));
  let r = await verifyJson(d);
  let t = only(r.report.problems, 'type', 'a.txt');
  assert.deepEqual([t.expected, t.actual], ['file', 'special file']);
  assert.equal(r.code, 1);

  d = copy();
  unlinkSync(join(d, 'sub', 'b.bin'));
  symlinkSync('/dev/zero', join(d, 'sub', 'b.bin'));
  r = await verifyJson(d);
  t = only(r.report.problems, 'type', 'sub/b.bin');
  assert.deepEqual([t.expected, t.actual], ['file', 'symlink']);

  d = copy();
  unlinkSync(join(d, 'empty'));
  mkdirSync(join(d, 'empty'), { mode: 0o750 });
  r = await verifyJson(d);
  t = only(r.report.problems, 'type', 'empty');
  assert.deepEqual([t.expected, t.actual], ['file', 'dir']);
});

test('DEST that is not a directory: usage error (exit 2)', { skip }, async () => {
  const r = await runCli(['verify', join(tmp.dir, 'no-such-backup')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /does not exist/);
});
