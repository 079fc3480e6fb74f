// A private, throwaway MariaDB server: what `hotbackup restore --recover`, `verify --restore-test`
// and the MariaDB tests need. Nothing is installed or configured system-wide:
//
//   mariadb-install-db --no-defaults --datadir=D          (installDatadir)
//   mariadbd --no-defaults --datadir=D --socket=S --skip-networking --pid-file=P --log-error=E
//            [--user=root when running as root] [--log-bin=B --server-id=N] [extra args]
//
// optionally under LD_PRELOAD=<libhotbackup.so> with HOTBACKUP_SOCKET and HOTBACKUP_SERVE=mariadbd.
// SQL goes through mysql2 over the unix socket as root (unix_socket auth as root, or the
// passwordless root account mariadb-install-db creates with --auth-root-authentication-method=normal).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// mysql2 takes ~50 ms to load: only commands that talk to a server pay for it.
import type { Connection } from 'mysql2/promise';

/** Where the MariaDB programs are; null fields when absent. */
export interface MariadbInstall {
  mariadbd: string;
  installDb: string | null;
  version: string | null;
}

const SERVER_CANDIDATES = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld', '/usr/libexec/mariadbd', '/usr/bin/mariadbd'];
const INSTALL_CANDIDATES = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db', '/usr/scripts/mariadb-install-db'];

/** Finds an installed mariadbd ($HOTBACKUP_MARIADBD overrides); null when there is none. Installs nothing. */
export function findMariadb(env: NodeJS.ProcessEnv = process.env): MariadbInstall | null {
  const mariadbd = [env.HOTBACKUP_MARIADBD, ...SERVER_CANDIDATES].find((p): p is string => !!p && existsSync(p));
  if (!mariadbd) return null;
  const installDb = INSTALL_CANDIDATES.find((p) => existsSync(p)) ?? null;
  let version: string | null = null;
  const r = spawnSync(mariadbd, ['--no-defaults', '--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) version = r.stdout.trim();
  return { mariadbd, installDb, version };
}

function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Creates a fresh datadir with the system tables (mariadb-install-db --no-defaults). */
export function installDatadir(install: MariadbInstall, datadir: string, opts: { extraArgs?: string[] } = {}): void {
  if (!install.installDb) throw new Error('mariadb-install-db is not installed (package mariadb-server)');
  mkdirSync(datadir, { recursive: true });
  const user = runningAsRoot() ? 'root' : (process.env.USER || spawnSync('id', ['-un'], { encoding: 'utf8' }).stdout.trim());
  const r = spawnSync(install.installDb, [
    '--no-defaults', `--datadir=${datadir}`, `--user=${user}`, '--auth-root-authentication-method=normal',
    '--skip-test-db', ...(opts.extraArgs ?? []),
  ], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) {
    throw new Error(`mariadb-install-db failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
}

export interface StartOptions {
  install: MariadbInstall;
  datadir: string;
  /** Directory for the socket, pid file and error log (created). */
  runDir: string;
  /** A name for the files in runDir (default 'mariadbd'). */
  name?: string;
  /** Run under this libhotbackup.so (LD_PRELOAD, HOTBACKUP_SERVE=mariadbd). */
  shim?: string | null;
  /** HOTBACKUP_SOCKET for the shim (default runDir/<name>.hb.sock when shim is set). */
  hotbackupSocket?: string;
  /** HOTBACKUP_TEST_HOOKS=1 for the shim. */
  testHooks?: boolean;
  /** --log-bin=<basename> --server-id=<serverId>. */
  binlog?: string | null;
  serverId?: number;
  /** Listen on 127.0.0.1:<port> too (default: --skip-networking, the unix socket only). */
  port?: number;
  /** More mariadbd options, e.g. ['--innodb-log-group-home-dir=/dev/shm/x']. */
  extraArgs?: string[];
  /** How long to wait for the server to answer (default 180 s). */
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class MariadbStartError extends Error {
  constructor(message: string, readonly errorLog: string) {
    super(message);
  }
}

/** A running private mariadbd. */
export class MariaServer {
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;
  readonly startedAt = Date.now();
  /** Milliseconds from spawn until the server answered. */
  readyMs = 0;

  private constructor(
    readonly child: ChildProcess,
    readonly datadir: string,
    readonly socket: string,
    readonly errorLogPath: string,
    readonly pidFile: string,
    readonly hotbackupSocket: string | null,
    readonly args: string[],
  ) {
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  get exitStatus() {
    return this.exitInfo;
  }

  errorLog(): string {
    try {
      return readFileSync(this.errorLogPath, 'utf8');
    } catch {
      return '';
    }
  }

  static async start(o: StartOptions): Promise<MariaServer> {
    const name = o.name ?? 'mariadbd';
    mkdirSync(o.runDir, { recursive: true });
    const socket = join(o.runDir, `${name}.sock`);
    const pidFile = join(o.runDir, `${name}.pid`);
    const errLog = join(o.runDir, `${name}.err`);
    const args = [
      '--no-defaults', `--datadir=${o.datadir}`, `--socket=${socket}`,
      ...(o.port ? [`--port=${o.port}`, '--bind-address=127.0.0.1'] : ['--skip-networking']),
      `--pid-file=${pidFile}`, `--log-error=${errLog}`,
    ];
    if (runningAsRoot()) args.push('--user=root');
    if (o.binlog) args.push(`--log-bin=${o.binlog}`, `--server-id=${o.serverId ?? 1}`);
    else if (o.serverId) args.push(`--server-id=${o.serverId}`);
    args.push(...(o.extraArgs ?? []));
    const env: NodeJS.ProcessEnv = { ...(o.env ?? process.env) };
    for (const k of ['LD_PRELOAD', 'HOTBACKUP_SOCKET', 'HOTBACKUP_SERVE', 'HOTBACKUP_SERVED_PID', 'HOTBACKUP_TEST_HOOKS']) delete env[k];
    let hbSocket: string | null = null;
    if (o.shim) {
      hbSocket = o.hotbackupSocket ?? join(o.runDir, `${name}.hb.sock`);
      env.LD_PRELOAD = o.shim;
      env.HOTBACKUP_SOCKET = hbSocket;
      env.HOTBACKUP_SERVE = 'mariadbd';
      if (o.testHooks) env.HOTBACKUP_TEST_HOOKS = '1';
    }
    // stdout/stderr (liburing/libaio warnings go to raw stderr) are appended to <name>.out.
    const outFd = openSync(join(o.runDir, `${name}.out`), 'a');
    const child = spawn(o.install.mariadbd, args, { env, stdio: ['ignore', outFd, outFd] });
    closeSync(outFd);
    const srv = new MariaServer(child, o.datadir, socket, errLog, pidFile, hbSocket, args);
    const deadline = Date.now() + (o.readyTimeoutMs ?? 180_000);
    for (;;) {
      if (!srv.running) {
        throw new MariadbStartError(`mariadbd exited during startup (${JSON.stringify(srv.exitInfo)}); error log ${errLog}:\n` +
          srv.errorLog().split('\n').slice(-40).join('\n'), srv.errorLog());
      }
      if (existsSync(socket)) {
        try {
          const c = await srv.connect();
          await c.end();
          if (!hbSocket || existsSync(hbSocket)) break;
        } catch { /* not yet */ }
      }
      if (Date.now() > deadline) {
        srv.child.kill('SIGKILL');
        throw new MariadbStartError(`mariadbd did not answer within ${o.readyTimeoutMs ?? 180_000} ms; error log:\n` +
          srv.errorLog().split('\n').slice(-40).join('\n'), srv.errorLog());
      }
      await sleep(100);
    }
    srv.readyMs = Date.now() - srv.startedAt;
    return srv;
  }

  /** A new connection as root over the socket (close it with end()). */
  async connect(database?: string): Promise<Connection> {
    const { default: mysql } = await import('mysql2/promise');
    return mysql.createConnection({ socketPath: this.socket, user: 'root', database, multipleStatements: false, connectTimeout: 10_000 });
  }

  /** Runs one statement on a fresh connection; returns the rows. */
  async query<T = any>(sql: string, params?: unknown[]): Promise<T[]> {
    const c = await this.connect();
    try {
      const [rows] = await c.query(sql, params);
      return rows as T[];
    } finally {
      await c.end().catch(() => {});
    }
  }

  /** Clean shutdown (SHUTDOWN statement) and wait for the process to exit; throws when it does not
   *  exit in time (it is then SIGKILLed, and the error says so). */
  async shutdown(timeoutMs = 120_000): Promise<void> {
    if (!this.running) return;
    try {
      await this.query('SHUTDOWN');
    } catch { /* the connection may drop as the server goes */ }
    if (await this.waitExit(timeoutMs)) return;
    this.child.kill('SIGKILL');
    await this.exited;
    throw new Error(`mariadbd pid ${this.pid} did not exit within ${timeoutMs} ms of SHUTDOWN (killed); log tail:\n` +
      this.errorLog().split('\n').slice(-15).join('\n'));
  }

  /** SIGKILL, as a crash. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Resolves true when the process exited within timeoutMs. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    if (!this.running) return true;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((res) => { timer = setTimeout(() => res(false), timeoutMs); }),
    ]);
    clearTimeout(timer);
    return r;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every base table of every database except the virtual schemas, as `db`.`t` names. */
export async function listTables(srv: MariaServer): Promise<{ db: string; table: string; engine: string }[]> {
  const rows = await srv.query<{ db: string; t: string; engine: string }>(
    `SELECT table_schema AS db, table_name AS t, engine FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('information_schema', 'performance_schema')
      ORDER BY table_schema, table_name`);
  return rows.map((r) => ({ db: r.db, table: r.t, engine: r.engine }));
}

export function quoteName(n: string): string {
  return '`' + n.replace(/`/g, '``') + '`';
}

export interface CheckResult {
  tables: number;
  rows: number;
  /** CHECK TABLE messages other than "status OK", as `db.t: Msg_type: Msg_text`. */
  problems: string[];
}

/** CHECK TABLE on every base table (EXTENDED when asked), plus a row count of each. */
export async function checkAllTables(srv: MariaServer, opts: { extended?: boolean } = {}): Promise<CheckResult> {
  const tables = await listTables(srv);
  const c = await srv.connect();
  const problems: string[] = [];
  let rows = 0;
  try {
    for (const t of tables) {
      const name = `${quoteName(t.db)}.${quoteName(t.table)}`;
      try {
        const [res] = await c.query(`CHECK TABLE ${name}${opts.extended ? ' EXTENDED' : ''}`);
        for (const r of res as { Msg_type: string; Msg_text: string }[]) {
          const fine = (r.Msg_type === 'status' && r.Msg_text === 'OK') ||
            // Engines without CHECK support (e.g. sequences in some versions) say so; not a problem.
            (r.Msg_type === 'note' && /doesn't support check/i.test(r.Msg_text));
          if (!fine) problems.push(`${t.db}.${t.table}: ${r.Msg_type}: ${r.Msg_text}`);
        }
      } catch (e) {
        problems.push(`${t.db}.${t.table}: CHECK TABLE failed: ${(e as Error).message}`);
      }
      try {
        const [cnt] = await c.query(`SELECT COUNT(*) AS n FROM ${name}`);
        rows += Number((cnt as { n: number }[])[0].n);
      } catch (e) {
        problems.push(`${t.db}.${t.table}: SELECT COUNT(*) failed: ${(e as Error).message}`);
      }
    }
  } finally {
    await c.end().catch(() => {});
  }
  return { tables: tables.length, rows, problems };
}

/** The binlog basename of a datadir: the `<base>.index` file at its top level that lists binlogs. */
export function binlogBasename(datadir: string, names: string[]): string | null {
  for (const n of names.filter((x) => x.endsWith('.index')).sort()) {
    const base = n.slice(0, -'.index'.length);
    let text = '';
    try {
      text = readFileSync(join(datadir, n), 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.length && lines.every((l) => new RegExp(`${escapeRe(base)}\\.\\d{6}$`).test(l))) return base;
  }
  return null;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
