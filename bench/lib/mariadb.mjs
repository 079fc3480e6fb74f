// A private MariaDB instance for the benchmarks (write-paths.md §1): install-db, start with
// or without the shim preloaded, query through the mariadb client, clean shutdown.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { log, mono, run, sh, sleep, which } from './util.mjs';

export function mariadbBinaries() {
  const mariadbd = which('mariadbd') ?? (existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : null);
  return {
    mariadbd,
    installDb: which('mariadb-install-db'),
    client: which('mariadb'),
    admin: which('mariadb-admin'),
    backup: which('mariadb-backup') ?? which('mariabackup'),
    sysbench: which('sysbench'),
  };
}

/** Options every benchmark server gets (same for every side). */
export function serverOptions(cfg) {
  return [
    `--innodb-buffer-pool-size=${cfg.bufferPool}`,
    // The dump/load of the buffer pool would make restarts (shim on/off) slower and uneven.
    '--innodb-buffer-pool-dump-at-shutdown=0',
    '--innodb-buffer-pool-load-at-startup=0',
    '--max-connections=200',
  ];
}

export function installDb(datadir, tmpdir) {
  mkdirSync(datadir, { recursive: true });
  mkdirSync(tmpdir, { recursive: true });
  // A private tmpdir: other MariaDB instances on the machine must not share temporary tables.
  sh('mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal',
    '--user=root', '--skip-test-db', `--tmpdir=${tmpdir}`], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Servers started and not yet stopped: stopped by stopAll() after a failure or at the end. */
export const liveServers = new Set();
export async function stopAll() {
  for (const s of [...liveServers]) await s.stop().catch(() => s.proc?.kill('SIGKILL'));
}

export class Server {
  /**
   * @param {object} o datadir, sock, runDir, shim (path of libhotbackup.so or null), control (socket path),
   *                   extra (more mariadbd options), cfg (bufferPool)
   */
  constructor(o) {
    Object.assign(this, o);
    this.proc = null;
    this.pid = null;
    mkdirSync(this.runDir, { recursive: true });
    this.errLog = join(this.runDir, 'err.log');
  }

  get label() { return this.shim ? 'shim' : 'plain'; }

  async start() {
    const args = ['--no-defaults', '--user=root', `--datadir=${this.datadir}`, `--socket=${this.sock}`,
      '--skip-networking', `--pid-file=${join(this.runDir, 'mariadbd.pid')}`, `--log-error=${this.errLog}`, `--tmpdir=${this.runDir}`,
      ...serverOptions(this.cfg), ...(this.extra ?? [])];
    const env = { ...process.env };
    delete env.LD_PRELOAD;
    if (this.shim) {
      env.LD_PRELOAD = this.shim;
      env.HOTBACKUP_SOCKET = this.control;
      env.HOTBACKUP_SERVE = 'mariadbd';
      Object.assign(env, this.env ?? {});
    }
    const out = openSync(join(this.runDir, 'stdout.log'), 'a');
    const t0 = mono();
    this.proc = spawn(mariadbBinaries().mariadbd, args, { env, stdio: ['ignore', out, out], cwd: this.datadir });
    closeSync(out);
    this.pid = this.proc.pid;
    liveServers.add(this);
    this.exited = new Promise((r) => this.proc.on('exit', (code, sig) => { this.proc = null; liveServers.delete(this); r({ code, sig }); }));
    for (;;) {
      if (!this.proc) throw new Error(`mariadbd exited during start; see ${this.errLog}:\n${tail(this.errLog)}`);
      const r = await run('mariadb-admin', ['--no-defaults', '-uroot', `-S${this.sock}`, 'ping'], { allowFail: true });
      if (r.status === 0) break;
      if (mono() - t0 > 180) throw new Error(`mariadbd did not answer within 180 s; see ${this.errLog}`);
      await sleep(100);
    }
    if (this.shim && !existsSync(this.control)) {
      // The control socket is created at load; give it a moment, then insist.
      for (let i = 0; i < 50 && !existsSync(this.control); i++) await sleep(100);
      if (!existsSync(this.control)) throw new Error(`mariadbd runs but the shim's control socket ${this.control} is missing`);
    }
    this.startSeconds = mono() - t0;
    return this.startSeconds;
  }

  async stop() {
    if (!this.proc) return;
    await run('mariadb-admin', ['--no-defaults', '-uroot', `-S${this.sock}`, 'shutdown'], { allowFail: true });
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), 120_000);
    await this.exited;
    clearTimeout(t);
  }

  /** Runs SQL; returns the tab-separated rows. */
  async query(sql, db) {
    const r = await run('mariadb', ['--no-defaults', '-uroot', `-S${this.sock}`, '-N', '-B', ...(db ? [db] : []), '-e', sql]);
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
  }

  async checkpoint() {
    // Flush dirty pages and write a checkpoint, so the datadir is quiet before idle copies.
    await this.query('SET GLOBAL innodb_max_dirty_pages_pct=0');
    for (let i = 0; i < 600; i++) {
      const [[, dirty]] = await this.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'");
      if (Number(dirty) === 0) break;
      await sleep(100);
    }
    await this.query('SET GLOBAL innodb_max_dirty_pages_pct=90');
    await this.query('SET GLOBAL innodb_log_checkpoint_now=ON').catch(() => {});
    sh('sync');
  }
}

function tail(p) {
  try {
    return readFileSync(p, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Waits until a server on `sock` answers a real query; returns seconds from t0 (monotonic). */
export async function waitAnswering(sock, t0, sql = 'SELECT 1') {
  for (;;) {
    const r = await run('mariadb', ['--no-defaults', '-uroot', `-S${sock}`, '-N', '-B', '-e', sql], { allowFail: true });
    if (r.status === 0) return mono() - t0;
    if (mono() - t0 > 300) throw new Error(`server on ${sock} did not answer within 300 s`);
    await sleep(50);
  }
}

export { log };
