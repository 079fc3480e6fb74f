// A clean backup of a busy workload verifies, and its manifest's checksums are the CRC32C of the
// backup's files as computed here by an independent pure-TypeScript CRC32C.
//
// The workload (test/verify-writer.mjs) runs under the real shim and writes without pause; the
// backup is started over the control socket (src/client.ts) and the copier is held at its
// copy_start and cut pause points until the writer did more operations, so writes are mirrored
// during the copy and land between copy and cut whatever the machine's speed.
import assert from 'node:assert/strict';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from '../src/client.js';
import { MANIFEST_CRC_MARKER, type Manifest, verifyBackup } from '../src/verify.js';
import { crc32cTs, hex, makeTmp, pausedAt, shimOrSkip, spawnUnderShim, verifyJson, waitDone, waitForSocket } from './verify-helpers.js';

const skip = shimOrSkip('test/verify-busy.test.ts');
const WRITER = fileURLToPath(new URL('./verify-writer.mjs', import.meta.url));

test('a backup of a busy workload verifies, and its checksums match an independent CRC32C', { skip, timeout: 300_000 }, async (t) => {
  const tmp = makeTmp('hb-verify-busy-');
  t.after(tmp.cleanup);
  const src = join(tmp.dir, 'src');
  const dest = join(tmp.dir, 'backup');
  const socket = join(tmp.dir, 'hb.sock');
  const w = await spawnUnderShim(process.env.HOTBACKUP_TEST_SHIM || (await import('../src/lib-path.js')).shimPath(),
    [WRITER, src, '7'], { socket });
  try {
    await w.waitFor((l) => l.length >= 50, '50 operations');
    await waitForSocket(socket, w);
    for (const point of ['copy_start', 'cut'] as const) await request(socket, { op: 'test_pause', point, on: true });
    await request(socket, { op: 'start', dest, sources: [src], throttle_bytes_per_sec: 0 });
    const until = Date.now() + 120_000;
    const moreOps = async () => {
      const n = w.lines().length;
      await w.waitFor((l) => l.length >= n + 40, '40 more operations');
    };
    await pausedAt(socket, 'copy_start', until, moreOps); // capture on, nothing copied yet
    await pausedAt(socket, 'cut', until, moreOps); // everything copied, cut not taken
    const s = await waitDone(socket);
    assert.equal(s.state, 'done', `backup ended ${s.state}: ${JSON.stringify(s.error)}`);
    assert.ok(s.bytes_mirrored > 0, 'no write was mirrored: the workload did not overlap the copy');
  } finally {
    await w.stop();
  }

  // verify: exit 0, nothing to report.
  const { code, report, stderr } = await verifyJson(dest);
  assert.deepEqual(report.problems, [], stderr);
  assert.equal(report.status, 'verified');
  assert.equal(code, 0);

  // The manifest's checksums, recomputed independently.
  const bytes = readFileSync(join(dest, 'hotbackup_manifest.json'));
  const manifest = JSON.parse(bytes.toString('utf8')) as Manifest;
  const at = bytes.lastIndexOf(MANIFEST_CRC_MARKER);
  assert.ok(at > 0);
  assert.equal(manifest.manifest_crc32c, hex(crc32cTs(bytes.subarray(0, at))), 'manifest_crc32c');
  const files = manifest.entries.filter((e) => e.type === 'file');
  assert.ok(files.length >= 10, `only ${files.length} files in the manifest`);
  for (const e of files) {
    const data = readFileSync(join(dest, e.path));
    assert.equal(data.length, e.size, `${e.path}: size`);
    assert.equal(e.crc32c, hex(crc32cTs(data)), `${e.path}: crc32c`);
  }
  // Every regular file of the backup is in the manifest (and nothing else but hotbackup_*).
  const onDisk: string[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dest, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      if (!rel && n.startsWith('hotbackup_')) continue;
      if (lstatSync(join(dest, r)).isDirectory()) walk(r);
      else onDisk.push(r);
    }
  };
  walk('');
  assert.deepEqual(onDisk.sort(), manifest.entries.filter((e) => e.type !== 'dir').map((e) => e.path).sort());

  // The same backup, read with 64 KiB segments on 4 threads: one file's segments are combined.
  const small = await verifyBackup(dest, { segmentBytes: 64 * 1024, threads: 4 });
  assert.deepEqual(small.problems, []);
  assert.equal(small.checked.files, files.length);
});
