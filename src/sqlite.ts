// Opening SQLite databases (the catalog, the demo's bank). better-sqlite3 loads a native library
// and SQLite itself, ~20 ms of start-up: it is required here on first use, so commands that never
// open a database (verify, status, throttle) do not pay for it.
import type BetterSqlite3 from 'better-sqlite3';
import { createRequire } from 'node:module';

export type SqliteDatabase = BetterSqlite3.Database;

const require = createRequire(import.meta.url);

export function openSqlite(path: string, options?: BetterSqlite3.Options): SqliteDatabase {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  return new Database(path, options);
}
