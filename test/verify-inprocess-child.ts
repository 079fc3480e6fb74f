// Run by test/verify-inprocess.test.ts under the shim (LD_PRELOAD, HOTBACKUP_SERVE=node): a
// better-sqlite3 bank keeps transferring money between accounts while this same process backs its
// own database up through the in-process API (`import { backup } from 'hotbackup'`).
// Usage: node --import tsx test/verify-inprocess-child.ts backup DIR DEST
//        node --import tsx test/verify-inprocess-child.ts probe
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { backup } from '../src/index.js';

const [mode, dir, dest] = process.argv.slice(2);

if (mode === 'probe') {
  const info = backup.info();
  try {
    await backup.status();
    console.log(JSON.stringify({ info, ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ info, ok: false, name: (e as Error).constructor.name, code: (e as { code?: string }).code, message: (e as Error).message }));
  }
  process.exit(0);
}

const ACCOUNTS = 200;
const db = new Database(join(dir, 'bank.db'));
db.pragma('journal_mode = WAL');
db.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, pad BLOB)');
const insert = db.prepare('INSERT INTO accounts VALUES (?, 1000, randomblob(4000))');
db.transaction(() => { for (let i = 1; i <= ACCOUNTS; i++) insert.run(i); })();
const debit = db.prepare('UPDATE accounts SET balance = balance - ?, pad = randomblob(4000) WHERE id = ?');
const credit = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const transfer = db.transaction((from: number, to: number, amount: number) => {
  debit.run(amount, from);
  credit.run(amount, to);
});

let transfers = 0;
let running = true;
const writer = (async () => {
  while (running) {
    const from = 1 + Math.floor(Math.random() * ACCOUNTS);
    const to = 1 + Math.floor(Math.random() * ACCOUNTS);
    transfer(from, to, 1 + Math.floor(Math.random() * 50));
    transfers++;
    await new Promise((r) => setImmediate(r));
  }
})();

const info = backup.info();
const started = await backup.start(dest, { sources: [dir], throttle: '256KB/s' });
// Let the throttled copy run while the bank writes, then lift the throttle.
const atStart = transfers;
let throttled = started;
while (throttled.state === 'copying' && (throttled.bytes_copied === 0 || transfers - atStart < 200)) {
  await new Promise((r) => setTimeout(r, 20));
  throttled = await backup.status();
}
const unthrottled = await backup.throttle('off');
const final = await backup.wait({ pollMs: 50 });
running = false;
await writer;
const sum = (db.prepare('SELECT SUM(balance) AS s FROM accounts').get() as { s: number }).s;
db.close();
console.log(JSON.stringify({
  info, started, throttled, unthrottled, final, transfers, transfersDuringCopy: transfers - atStart, sum,
}));
