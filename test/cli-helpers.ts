// Shared by the CLI tests: a real shim-loaded server, the CLI in-process and as a process.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BackupStatus, rawRequest, request, TERMINAL_STATES } from '../src/client.js';
import { main } from '../src/cli/main.js';
import { shimPath } from '../src/lib-path.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SHIM = shimPath();
export const WRITER = join(root, 'test', 'cli-writer.mjs');

/**
 * The command tests need build/shim/libhotbackup.so. Missing: under CI=true the test fails;
 * otherwise it is skipped, loudly. Returns false when the caller must return.
 */
export function needShim(t: TestContext): boolean {
  if (existsSync(SHIM)) return true;
  const msg = `libhotbackup.so is not built (${SHIM}); run \`node scripts/build.mjs --shim-only\``;
  if (process.env.CI === 'true') assert.fail(`${msg} (CI=true: a missing shim is a failure)`);
  process.stderr.write(`\n*** SKIPPED (shim missing): ${t.name}: ${msg}\n`);
  t.skip(`SHIM MISSING: ${msg}`);
  return false;
}

/** A scratch directory removed at the end of the test. */
export function scratch(t: TestContext, prefix = 'hb-cli-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface Server {
  dir: string;
  data: string;
  socket: string;
  pid: number;
  child: ChildProcess;
  status(): Promise<BackupStatus>;
  stop(): Promise<void>;
}

/**
 * Spawns `node test/cli-writer.mjs` under the shim in <dir>/data (its working directory, so the
 * default source): `files` files of `fileSize` bytes, then small writes forever.
 */
export async function startServer(t: TestContext, dir: string, opts: { files?: number; fileSize?: number; hooks?: boolean; socket?: string | null } = {}): Promise<Server> {
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  const socket = opts.socket === undefined ? join(dir, 's.sock') : opts.socket;
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: SHIM, HOTBACKUP_SERVE: 'node' };
  delete env.HOTBACKUP_SERVED_PID;
  if (socket) env.HOTBACKUP_SOCKET = socket;
  else delete env.HOTBACKUP_SOCKET;
  if (opts.hooks) env.HOTBACKUP_TEST_HOOKS = '1';
  const child = spawn(process.execPath, [WRITER, String(opts.files ?? 16), String(opts.fileSize ?? 65536)],
    { cwd: data, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  // Ready when the writer said so and the socket answers.
  const sockPath = socket ?? `/tmp/hotbackup-${process.getuid!()}/${child.pid}.sock`;
  for (let i = 0; ; i++) {
    if (gone) assert.fail(`the writer exited before it was ready:\n${out}`);
    if (out.includes('ready') && existsSync(sockPath)) {
      try {
        await request(sockPath, { op: 'status' }, 2000);
        break;
      } catch { /* not yet */ }
    }
    if (i > 600) assert.fail(`the shim's socket ${sockPath} never answered; writer output:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const server: Server = {
    dir, data, socket: sockPath, pid: child.pid!, child,
    status: () => request(sockPath, { op: 'status' }),
    async stop() {
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  t.after(() => server.stop());
  return server;
}

/** Sends a raw request (test hooks etc.) and asserts it was accepted. */
export async function hook(socket: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
  const reply = await rawRequest(socket, req as { op: string });
  assert.ok(reply.ok, `request ${JSON.stringify(req)} refused: ${JSON.stringify(reply)}`);
  return reply as unknown as Record<string, unknown>;
}

/** Polls the server until its backup has ended. */
export async function waitEnded(socket: string): Promise<BackupStatus> {
  for (;;) {
    const s = await request(socket, { op: 'status' });
    if (TERMINAL_STATES.has(s.state)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function sink() {
  let text = '';
  return { write: (s: string) => { text += s; return true; }, get text() { return text; }, isTTY: false };
}

/** Environment for a CLI run: the given catalog, no socket inherited from the test's own env. */
export function cliEnv(catalog: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOTBACKUP_CATALOG: catalog, ...extra };
  for (const k of ['HOTBACKUP_SOCKET', 'LD_PRELOAD', 'HOTBACKUP_TEST_PAUSE_AT', 'HOTBACKUP_SOCKET_DIR']) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

/** Runs the CLI in this process. */
export async function cli(args: string[], env: NodeJS.ProcessEnv, cwd = root): Promise<CliResult> {
  const out = sink();
  const err = sink();
  const code = await main(args, { stdout: out, stderr: err, env, cwd });
  return { code, stdout: out.text, stderr: err.text };
}

let built = false;
/** dist/ must be current for `node bin/hotbackup.js`: compile once if any source is newer.
 *  Test files run in parallel, so the compile is serialised by a lock directory. */
export function ensureBuilt(): void {
  if (built) return;
  const newest = (d: string): number => readdirSync(d, { withFileTypes: true }).reduce((m, e) => {
    const p = join(d, e.name);
    return Math.max(m, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }, 0);
  const distMain = join(root, 'dist', 'cli', 'main.js');
  const stale = () => !existsSync(distMain) || newest(join(root, 'src')) > statSync(distMain).mtimeMs;
  if (stale()) {
    const lock = join(root, 'dist.build-lock');
    for (let i = 0; ; i++) {
      try {
        mkdirSync(lock);
        break;
      } catch {
        // Another test file is compiling; a lock older than 5 minutes is from a killed run.
        try {
          if (Date.now() - statSync(lock).mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true });
        } catch { /* gone meanwhile */ }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
      }
    }
    try {
      if (stale()) {
        const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
          { cwd: root, encoding: 'utf8' });
        assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  built = true;
}

/** Runs `node bin/hotbackup.js ...` as a real process. */
export function cliProcess(args: string[], env: NodeJS.ProcessEnv, cwd = root): Promise<CliResult> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'hotbackup.js'), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Spawns the CLI as a process and resolves once it prints its test pause line. */
export function cliPausedAt(args: string[], env: NodeJS.ProcessEnv, at: string): Promise<{ child: ChildProcess; stderr: () => string }> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'hotbackup.js'), ...args],
      { cwd: root, env: { ...env, HOTBACKUP_TEST_PAUSE_AT: at }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes(`test pause at ${at.includes(':') ? at : `${at}:after`}`)) resolve({ child, stderr: () => stderr });
    });
    child.on('exit', (code) => reject(new Error(`hotbackup exited (${code}) before pausing at ${at}:\n${stderr}`)));
  });
}

/** Parses stdout that must be exactly one JSON document. */
export function oneJson(r: CliResult): any {
  assert.doesNotThrow(() => JSON.parse(r.stdout), `stdout is not one JSON document:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Names under a directory (recursively), for "nothing left behind" checks. */
export function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String).sort();
}
