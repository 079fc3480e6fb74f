// Hostile backups (issue 14): a backup crafted by hand, its manifest checksum recomputed so that
// only the structure checks can catch it. `hotbackup restore` must refuse each one naming the
// entry, and write, chmod or truncate nothing outside TARGET (a victim file beside it is
// checked byte for byte and by mode). No shim is needed: the backups are written directly.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { cli } from './cli-helpers.js';
import { crc32cTs, hex, makeTmp } from './verify-helpers.js';

interface Entry { path: string; type: 'file' | 'dir' | 'symlink'; mode: number; size?: number; crc32c?: string; target?: string }

/** Writes hotbackup_manifest.json for `entries` with a valid manifest_crc32c. */
function seal(dir: string, entries: Entry[]): void {
  const body = JSON.stringify({ format: 'hotbackup-manifest-1', pid: 1, sources: [{ path: '/srv/data', dest: '.' }],
    started_at: 1, cut_at: 2, finished_at: 3, cut_stall_us: 1, bytes_copied: 0, bytes_mirrored: 0, files: entries.length, entries })
    .slice(0, -1);
  writeFileSync(join(dir, 'hotbackup_manifest.json'), `${body},"manifest_crc32c":"${hex(crc32cTs(Buffer.from(body)))}"}\n`);
}

function fileEntry(path: string, content: string, mode = 0o640): Entry {
  return { path, type: 'file', mode, size: Buffer.byteLength(content), crc32c: hex(crc32cTs(Buffer.from(content))) };
}

/** A scratch dir with an outside directory holding a victim file, a backup dir and a target path. */
function setup(name: string) {
  const tmp = makeTmp(`hb-hostile-${name}-`);
  const outside = join(tmp.dir, 'outside');
  mkdirSync(outside);
  const victim = join(outside, 'victim');
  writeFileSync(victim, 'precious');
  chmodSync(victim, 0o644);
  const backup = join(tmp.dir, 'backup');
  mkdirSync(backup);
  return { tmp, outside, victim, backup, target: join(tmp.dir, 'target') };
}

async function refused(s: ReturnType<typeof setup>, entry: string) {
  const env = { ...process.env, HOTBACKUP_CATALOG: join(s.tmp.dir, 'catalog.db') };
  const r = await cli(['restore', s.backup, s.target, '--json'], env);
  assert.notEqual(r.code, 0, `restore of a hostile backup succeeded: ${r.stdout}`);
  const out = `${r.stdout}${r.stderr}`;
  assert.ok(out.includes(entry), `the refusal must name ${entry}: ${out}`);
  assert.equal(readFileSync(s.victim, 'utf8'), 'precious', 'a file outside TARGET was written');
  assert.equal(statSync(s.victim).mode & 0o7777, 0o644, 'a file outside TARGET was chmodded');
  assert.ok(!existsSync(join(s.outside, 'new')), 'a file outside TARGET was created');
}

test('an entry under a listed symlink to a directory outside is refused (restore would write through it)', async () => {
  const s = setup('symlink-parent');
  try {
    // The backup's own symlink points where the manifest says, so every per-entry check passes:
    // d/victim read through it has exactly the listed size and checksum.
    symlinkSync(s.outside, join(s.backup, 'd'));
    seal(s.backup, [
      { path: 'd', type: 'symlink', mode: 0o777, target: s.outside },
      { ...fileEntry('d/victim', 'precious'), mode: 0o600 },
    ]);
    await refused(s, 'd/victim');
  } finally {
    s.tmp.cleanup();
  }
});

test('an entry under a path the manifest lists as a file, or does not list, is refused', async () => {
  const s = setup('file-parent');
  try {
    mkdirSync(join(s.backup, 'a'));
    writeFileSync(join(s.backup, 'a', 'f'), 'x');
    seal(s.backup, [fileEntry('a/f', 'x')]);
    await refused(s, 'a/f');
  } finally {
    s.tmp.cleanup();
  }
});

test('a world-writable or out-of-range mode is refused (no backup has one)', async () => {
  for (const mode of [0o666, 0o10644]) {
    const s = setup(`mode-${mode.toString(8)}`);
    try {
      writeFileSync(join(s.backup, 'f'), 'x');
      chmodSync(join(s.backup, 'f'), mode & 0o7777);
      seal(s.backup, [fileEntry('f', 'x', mode)]);
      await refused(s, 'f');
    } finally {
      s.tmp.cleanup();
    }
  }
});

test('absolute and .. entry paths are refused', async () => {
  for (const path of [join('..', 'outside', 'new'), '/tmp/new', 'a/../../outside/new']) {
    const s = setup('dotdot');
    try {
      writeFileSync(join(s.backup, 'x'), 'evil');
      seal(s.backup, [fileEntry(path, 'evil')]);
      await refused(s, JSON.stringify(path).slice(1, -1));
    } finally {
      s.tmp.cleanup();
    }
  }
});
