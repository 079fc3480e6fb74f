// Shared by test/verify-*.test.ts: an independent pure-TypeScript CRC32C, a process under the real
// shim, MariaDB data directories, the CLI run in-process, and byte surgery on files.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawRequest, request } from '../src/client.js';
import { main } from '../src/cli/main.js';
import { shimPath } from '../src/lib-path.js';

// ---- CRC32C, bit by bit from the polynomial: shares nothing with the C++ implementations ----
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32cTs(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

// ---- temporary directories ----
export function makeTmp(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- skip or fail: under CI=true a missing prerequisite is an error, never a skip ----
export function requireOrSkip(what: string, ok: boolean, testFile: string, how: string): string | false {
  if (ok) return false;
  const msg = `${testFile}: ${what} is not available (${how})`;
  if (process.env.CI === 'true') throw new Error(`${msg}. CI=true: refusing to skip.`);
  console.warn(`\n*** SKIPPING tests in ${testFile}: ${msg}. ***\n`);
  return `${what} is not available`;
}

export function shimOrSkip(testFile: string): string | false {
  const p = process.env.HOTBACKUP_TEST_SHIM || shimPath();
  return requireOrSkip('libhotbackup.so', existsSync(p), testFile, `looked for ${p}; run \`node scripts/build.mjs\``);
}

// ---- the CLI, in-process ----
export async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    // verify never opens the catalog: a catalog path that cannot exist proves it.
    env: { ...process.env, HOTBACKUP_CATALOG: '/nonexistent/hotbackup-verify-test/catalog.db' },
  });
  return { code, stdout, stderr };
}

export async function verifyJson(dest: string, ...extra: string[]) {
  const r = await runCli(['verify', dest, '--json', ...extra]);
  return { ...r, report: JSON.parse(r.stdout) };
}

// ---- byte surgery ----
export function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, offset) !== 1) throw new Error(`${path} has no byte at ${offset}`);
    b[0] ^= 0x5a;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

// ---- a process under the real shim ----
export interface ShimmedProcess {
  child: ChildProcess;
  socket: string;
  stdout(): string;
  /** Lines on stdout so far. */
  lines(): string[];
  waitFor(pred: (lines: string[]) => boolean, what: string, ms?: number): Promise<void>;
  stop(): Promise<{ code: number | null; signal: string | null }>;
}

/** Spawns `node args...` with LD_PRELOAD=shim, HOTBACKUP_SERVE=node and its own socket. */
export async function spawnUnderShim(shim: string, args: string[], o: { socket: string; cwd?: string; env?: Record<string, string> }): Promise<ShimmedProcess> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    LD_PRELOAD: shim, HOTBACKUP_SERVE: 'node', HOTBACKUP_SOCKET: o.socket, HOTBACKUP_TEST_HOOKS: '1',
    ...o.env,
  };
  delete env.HOTBACKUP_SERVED_PID;
  const child = spawn(process.execPath, args, { env, cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exit: { code: number | null; signal: string | null } | null = null;
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-20000)));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.on('exit', (code, signal) => r((exit = { code, signal }))));
  const lines = () => out.split('\n').filter(Boolean);
  const p: ShimmedProcess = {
    child, socket: o.socket, stdout: () => out, lines,
    async waitFor(pred, what, ms = 120_000) {
      const until = Date.now() + ms;
      while (!pred(lines())) {
        if (exit) throw new Error(`waiting for ${what}: the process exited ${JSON.stringify(exit)}; stderr:\n${err}`);
        if (Date.now() > until) {
          child.kill('SIGKILL');
          throw new Error(`waiting for ${what}: timed out; stderr:\n${err}`);
        }
        await sleep(20);
      }
    },
    async stop() {
      if (!exit) child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const r = await exited;
      clearTimeout(t);
      if (r.code !== 0) throw new Error(`the process under the shim exited ${JSON.stringify(r)}; stderr:\n${err}`);
      return r;
    },
  };
  return p;
}

/** Waits until the shim's control socket answers status. */
export async function waitForSocket(socket: string, p?: ShimmedProcess): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await rawRequest(socket, { op: 'status' }, 2000);
      if (r.ok) return;
      throw new Error(`the shim refused status: ${r.error.code}: ${r.error.message}`);
    } catch (e) {
      if ((e as Error).message.startsWith('the shim refused')) throw e;
      if (p?.child.exitCode != null) throw new Error(`the process under the shim exited (${p.child.exitCode})`);
      if (Date.now() > until) throw new Error(`the shim's socket ${socket} never answered: ${(e as Error).message}`);
      await sleep(50);
    }
  }
}

/** Polls status until the backup leaves copying/finishing. */
export async function waitDone(socket: string, ms = 180_000) {
  const until = Date.now() + ms;
  for (;;) {
    const s = await request(socket, { op: 'status' });
    if (!['copying', 'finishing'].includes(s.state)) return s;
    if (Date.now() > until) {
      await rawRequest(socket, { op: 'cancel' }).catch(() => {});
      throw new Error(`the backup did not finish; last status ${JSON.stringify(s)}`);
    }
    await sleep(50);
  }
}

/** Holds the copier at a test pause point until `during` resolves (needs HOTBACKUP_TEST_HOOKS=1). */
export async function pausedAt(socket: string, point: 'copy_start' | 'cut', until: number, during: () => Promise<void>) {
  for (;;) {
    const r = await rawRequest(socket, { op: 'test_paused' });
    if (!r.ok) throw new Error(`test_paused: ${r.error.code} ${r.error.message}`);
    if ((r as { paused?: string }).paused === point) break;
    if (Date.now() > until) throw new Error(`the copier never reached ${point}`);
    await sleep(20);
  }
  await during();
  await request(socket, { op: 'test_pause', point, on: false });
}

// ---- MariaDB ----
export function mariadbInstallDb(): string | null {
  for (const p of ['/usr/bin/mariadb-install-db', '/usr/local/bin/mariadb-install-db', '/usr/bin/mysql_install_db']) {
    if (existsSync(p)) return p;
  }
  const r = spawnSync('sh', ['-c', 'command -v mariadb-install-db'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** Creates a fresh data directory with mariadb-install-db (no server left running). `serverArgs`
 *  go to the bootstrap server, e.g. --innodb-checksum-algorithm=crc32. */
export function installDatadir(datadir: string, serverArgs: string[] = []): void {
  const bin = mariadbInstallDb();
  if (!bin) throw new Error('mariadb-install-db not found');
  const args = ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal',
    '--skip-test-db', '--innodb-log-file-size=8M', '--innodb-buffer-pool-size=16M', ...serverArgs];
  if (process.getuid?.() === 0) args.push('--user=root');
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`mariadb-install-db failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
}
