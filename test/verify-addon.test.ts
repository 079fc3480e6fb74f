// The native addon: where it loads from, what a missing build says, and its checksums against an
// independent pure-TypeScript CRC32C.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { AddonLoadError, loadAddon } from '../src/addon.js';
import { packageRoot } from '../src/lib-path.js';
import { crc32cTs, makeTmp, requireOrSkip, runCli } from './verify-helpers.js';

const FILE = 'test/verify-addon.test.ts';
const built = join(packageRoot, 'build', 'Release', 'hotbackup_addon.node');
const skipBuilt = requireOrSkip('the built addon', existsSync(built), FILE, `looked for ${built}; run \`npm install\` or \`node scripts/build.mjs\``);
const distIndex = join(packageRoot, 'dist', 'index.js');
const skipDist = skipBuilt || requireOrSkip('the compiled package (dist/)', existsSync(distIndex), FILE, 'run `npm install` or `npm run build:ts`');

test('the package entry (import "hotbackup") loads the addon from build/Release and it works', { skip: skipDist }, () => {
  // A separate Node process importing the package by its name, as a user would (self-reference
  // through package.json "exports"), running the compiled dist/ code.
  const script = `
    import { loadAddon, verifyBackup } from 'hotbackup';
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const a = loadAddon();
    console.log(JSON.stringify({
      path: require('node-gyp-build').path(process.cwd()),
      crc: a.crc32c(Buffer.from('123456789')).toString(16),
      hasVerify: typeof verifyBackup,
    }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.path, built);
  assert.equal(out.crc, 'e3069283'); // the CRC32C check value
  assert.equal(out.hasVerify, 'function');
});

test('a missing build: the error lists every place looked in and how to fix it', () => {
  const tmp = makeTmp('hb-addon-missing-');
  try {
    writeFileSync(join(tmp.dir, 'package.json'), '{"name":"hotbackup-empty"}');
    mkdirSync(join(tmp.dir, 'build', 'Release'), { recursive: true });
    assert.throws(() => loadAddon(tmp.dir), (e: unknown) => {
      assert.ok(e instanceof AddonLoadError);
      assert.equal(e.code, 'addon_missing');
      assert.deepEqual(e.tried, [
        `${join(tmp.dir, 'build', 'Release', 'hotbackup_addon.node')} (no .node file there)`,
        `${join(tmp.dir, 'build', 'Debug', 'hotbackup_addon.node')} (no such directory)`,
        `${join(tmp.dir, 'prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node')} (no such directory)`,
      ]);
      for (const t of e.tried) assert.ok(e.message.includes(t), `${t} not in the message:\n${e.message}`);
      assert.match(e.message, /No native build was found/);
      assert.match(e.message, /binding\.gyp is missing|npm rebuild hotbackup/);
      return true;
    });
  } finally {
    tmp.cleanup();
  }
});

test('hotbackup verify with no loadable addon: exit 4 and the listing', { skip: skipBuilt }, async () => {
  const tmp = makeTmp('hb-addon-cli-');
  const saved = process.env.HOTBACKUP_PREBUILD;
  try {
    const dest = join(tmp.dir, 'backup');
    mkdirSync(dest);
    writeFileSync(join(dest, 'hotbackup_manifest.json'), '{"format":"hotbackup-manifest-1","entries":[],"manifest_crc32c":"00000000"}');
    // node-gyp-build looks in $HOTBACKUP_PREBUILD instead of the package when it is set.
    process.env.HOTBACKUP_PREBUILD = join(tmp.dir, 'nothing-here');
    const { code: exit, stderr } = await runClean(dest);
    assert.equal(exit, 4, stderr);
    assert.match(stderr, /native addon could not be loaded/);
    assert.match(stderr, /nothing-here/);
    assert.match(stderr, /Looked in:/);
  } finally {
    if (saved === undefined) delete process.env.HOTBACKUP_PREBUILD;
    else process.env.HOTBACKUP_PREBUILD = saved;
    tmp.cleanup();
  }
});

async function runClean(dest: string) {
  // A fresh process: the addon is cached once loaded.
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e',
    `import { main } from './src/cli/main.ts'; process.exitCode = await main(['verify', ${JSON.stringify(dest)}]);`],
  { cwd: packageRoot, encoding: 'utf8', env: { ...process.env, HOTBACKUP_CATALOG: join(dest, '..', 'catalog.db') } });
  return { code: r.status, stderr: r.stderr };
}

test('crc32c equals an independent CRC32C for every length and alignment', { skip: skipBuilt }, () => {
  const a = loadAddon();
  assert.equal(a.crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(a.crc32c(Buffer.alloc(0)), 0);
  assert.equal(a.crc32c(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(a.crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43); // RFC 3720 B.4: 32 bytes of 0xff
  const buf = randomBytes(70_000);
  for (let len = 0; len < 80; len++) {
    for (const off of [0, 1, 3, 7]) {
      const v = buf.subarray(off, off + len);
      assert.equal(a.crc32c(v), crc32cTs(v), `len ${len} off ${off}`);
    }
  }
  assert.equal(a.crc32c(buf), crc32cTs(buf));
  // Around the sizes where crc32c_update runs three interleaved 1 KiB chains and joins them.
  for (const len of [3071, 3072, 3073, 6143, 6144, 6145, 3 * 1024 * 7 + 13]) {
    for (const off of [0, 5]) {
      const v = buf.subarray(off, off + len);
      assert.equal(a.crc32c(v), crc32cTs(v), `len ${len} off ${off}`);
      assert.equal(a.crc32c(v, 0x12345678), crc32cTs(v, 0x12345678), `len ${len} off ${off}, continued`);
    }
  }
  // Continuing a CRC, and combining two.
  const x = buf.subarray(0, 12_345);
  const y = buf.subarray(12_345);
  assert.equal(a.crc32c(y, a.crc32c(x)), crc32cTs(buf));
  assert.equal(a.crc32cCombine(a.crc32c(x), a.crc32c(y), y.length), crc32cTs(buf));
  assert.equal(a.crc32cCombine(a.crc32c(x), 0, 0), a.crc32c(x));
  assert.throws(() => a.crc32c('text' as never), /Usage: crc32c/);
});

test('scanFiles: parallel segments combine to the file CRC; progress; errors per file', { skip: skipBuilt }, async () => {
  const a = loadAddon();
  const tmp = makeTmp('hb-addon-scan-');
  try {
    const big = randomBytes(3 * 65536 + 4321);
    writeFileSync(join(tmp.dir, 'big'), big);
    writeFileSync(join(tmp.dir, 'empty'), '');
    const progress: [number, number][] = [];
    const r = await a.scanFiles(
      [{ path: join(tmp.dir, 'big') }, { path: join(tmp.dir, 'empty') }, { path: join(tmp.dir, 'absent') }, { path: tmp.dir }],
      { threads: 3, segmentBytes: 65536, bufferBytes: 65536 },
      (bytes, files) => progress.push([bytes, files]));
    assert.equal(r[0].size, big.length);
    assert.equal(r[0].crc32c, crc32cTs(big));
    assert.equal(r[0].error, null);
    assert.equal(r[0].pages, null);
    assert.deepEqual([r[1].size, r[1].crc32c, r[1].error], [0, 0, null]);
    assert.equal(r[2].error?.code, 'ENOENT');
    assert.equal(r[3].error?.code, 'EINVAL');
    assert.match(r[3].error!.message, /not a regular file/);
    // Progress is reported from the threads, in order, ending with everything read.
    await new Promise((res) => setImmediate(res));
    assert.ok(progress.length >= 1);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0]);
    assert.deepEqual(progress.at(-1), [big.length, 2]);
    await assert.rejects(async () => a.scanFiles('nope' as never), /Usage: scanFiles/);

    // Lengths around the point where one buffer's CRC is split into three interleaved chains.
    const lengths = [12_287, 12_288, 12_289, 13_824 + 7, 65_535, 100_003];
    for (const n of lengths) writeFileSync(join(tmp.dir, `len-${n}`), big.subarray(0, n));
    const byLength = await a.scanFiles(lengths.map((n) => ({ path: join(tmp.dir, `len-${n}`) })), { threads: 2 });
    byLength.forEach((x, i) => assert.equal(x.crc32c, crc32cTs(big.subarray(0, lengths[i])), `length ${lengths[i]}`));
  } finally {
    tmp.cleanup();
  }
});

test('scanFiles: a cached file (its large segments mapped, its tail read) and the same file read with mapCached:false give its CRC', { skip: skipBuilt }, async () => {
  const a = loadAddon();
  const tmp = makeTmp('hb-addon-mapped-');
  try {
    // Just written, so resident: two 4 MiB segments large enough to be mapped, then a ragged
    // tail small enough to be read.
    const data = randomBytes(9 * 1024 * 1024 + 12_345);
    const path = join(tmp.dir, 'warm');
    writeFileSync(path, data);
    const progress: number[] = [];
    const [mapped] = await a.scanFiles([{ path }], { threads: 2, segmentBytes: 4 * 1024 * 1024 }, (b) => progress.push(b));
    const [read] = await a.scanFiles([{ path }], { threads: 2, segmentBytes: 4 * 1024 * 1024, mapCached: false });
    assert.equal(mapped.error, null);
    assert.equal(mapped.crc32c, crc32cTs(data));
    assert.equal(read.crc32c, crc32cTs(data));
    assert.equal(mapped.size, data.length);
    await new Promise((res) => setImmediate(res));
    assert.equal(progress.at(-1), data.length);
  } finally {
    tmp.cleanup();
  }
});

test('scanFiles: a file that shrinks while it is mapped is reported, and the process lives (SIGBUS caught)', { skip: skipBuilt }, async () => {
  const a = loadAddon();
  const tmp = makeTmp('hb-addon-sigbus-');
  const before = process.env.HOTBACKUP_TEST_HOOKS;
  process.env.HOTBACKUP_TEST_HOOKS = '1';
  try {
    const path = join(tmp.dir, 'shrinks');
    writeFileSync(path, randomBytes(4 * 1024 * 1024));
    // The hook truncates the file to 1 MiB after its segment is mapped and found resident, before
    // any of it is read: reading on from 1 MiB faults. Without the hook having run in the mapped
    // path the file would not shrink, and the scan would report a clean checksum instead.
    const [r] = await a.scanFiles([{ path }], { threads: 1, testTruncateMappedTo: 1024 * 1024 } as never);
    assert.equal(r.error?.code, 'ESTALE', JSON.stringify(r));
    assert.match(r.error!.message, /became shorter while it was read \(1048576 bytes instead of 4194304\)/);
    // Still alive and still working.
    const ok = randomBytes(2 * 1024 * 1024);
    writeFileSync(path, ok);
    const [again] = await a.scanFiles([{ path }], { threads: 1 });
    assert.equal(again.crc32c, crc32cTs(ok));
  } finally {
    if (before === undefined) delete process.env.HOTBACKUP_TEST_HOOKS;
    else process.env.HOTBACKUP_TEST_HOOKS = before;
    tmp.cleanup();
  }
});
