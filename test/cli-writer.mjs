// A small server for the CLI tests, run under the shim in its working directory (the default
// backup source): creates FILES files of SIZE bytes, prints "ready", then keeps writing
// (pwrite at random offsets, appends to a log) until killed.
//   node test/cli-writer.mjs [FILES=16] [SIZE=65536]
import { closeSync, openSync, writeSync } from 'node:fs';

const files = Number(process.argv[2] ?? 16);
const size = Number(process.argv[3] ?? 65536);
const fds = [];
for (let i = 0; i < files; i++) {
  const fd = openSync(`f${String(i).padStart(3, '0')}.dat`, 'w+', 0o640);
  const buf = Buffer.alloc(size, 65 + (i % 26));
  writeSync(fd, buf, 0, size, 0);
  fds.push(fd);
}
const log = openSync('writes.log', 'a', 0o640);
process.stdout.write('ready\n');

let n = 0;
const tick = () => {
  for (let k = 0; k < 4; k++) {
    n++;
    const fd = fds[n % fds.length];
    const chunk = Buffer.from(`write ${n} `.padEnd(64, '.'));
    writeSync(fd, chunk, 0, chunk.length, (n * 4099) % Math.max(1, size - chunk.length));
    writeSync(log, `${n}\n`);
  }
};
const timer = setInterval(tick, 2);
process.on('SIGTERM', () => {
  clearInterval(timer);
  for (const fd of fds) closeSync(fd);
  closeSync(log);
  process.exit(0);
});
