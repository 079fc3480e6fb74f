// A busy writer for test/verify-busy.test.ts, run under the shim: rewrites, appends to, truncates,
// creates, renames and removes files in DIR without pause, one operation at a time, printing
// "op N" after each. Stops (exit 0) when its standard input closes.
// Usage: node test/verify-writer.mjs DIR SEED
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const [dir, seedArg] = process.argv.slice(2);
let seed = Number(seedArg ?? 1) >>> 0 || 1;
const rand = (n) => {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
};
const block = (n, v) => Buffer.alloc(n, v & 0xff);

mkdirSync(join(dir, 'd1', 'd2'), { recursive: true });
const names = [];
for (let i = 0; i < 8; i++) names.push(join(dir, i % 2 ? 'd1' : '', `f${i}.dat`));
for (let i = 0; i < 2; i++) names.push(join(dir, 'd1', 'd2', `g${i}.dat`));
for (const n of names) {
  const fd = openSync(n, 'w', 0o640);
  writeSync(fd, block(64 * 1024 + rand(64 * 1024), rand(256)));
  closeSync(fd);
}

let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.resume();

let op = 0;
for (;;) {
  if (stop) break;
  const f = names[rand(names.length)];
  const fd = openSync(f, 'r+');
  try {
    switch (rand(6)) {
      case 0: case 1: writeSync(fd, block(1 + rand(16384), op), 0, undefined, rand(192 * 1024)); break; // pwrite
      case 2: writeSync(fd, block(1 + rand(8192), op), 0, undefined, null); break; // write at the offset
      case 3: ftruncateSync(fd, 32 * 1024 + rand(160 * 1024)); break;
      default: {
        const tmp = join(dir, `tmp-${op % 3}.new`);
        const t = openSync(tmp, 'w', 0o600);
        writeSync(t, block(1 + rand(32768), op));
        closeSync(t);
        if (rand(2)) renameSync(tmp, join(dir, 'd1', `renamed-${op % 4}.dat`));
        else if (existsSync(tmp)) unlinkSync(tmp);
      }
    }
  } finally {
    closeSync(fd);
  }
  process.stdout.write(`op ${++op}\n`);
  await new Promise((r) => setImmediate(r));
}
