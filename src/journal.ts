// The undo journal ("rollback queue"). Every state change a CLI command makes outside its own
// process (create a directory, start a backup, spawn a server, copy files into a target, ...) is
// a journal step:
//
//   const dest = await journal.step('create_dest',
//     { action: 'remove_created_dir', args: { path }, description: `remove ${path}` },
//     async () => { mkdirSync(path); return path; });
//
// 1. The step and its undo are written to the catalog (state `pending`) BEFORE the action runs.
// 2. The action runs. 3. The step is marked `done`.
// On an error the command calls rollback(): every `pending` or `done` step is undone in reverse
// order (a `pending` step's action may or may not have happened, so every undo is idempotent).
// If the CLI process dies (SIGKILL, power loss), its journal stays `open`; the next `hotbackup`
// invocation of any command finds journals whose owner process is gone and rolls them back
// (recoverDeadJournals), and `hotbackup recover` does it explicitly, reporting each step.
//
// Undo actions are named, with JSON arguments, and registered in `undoActions`, so a process
// that never saw the original command can run them. Later commands (restore, verify) register
// their own actions with registerUndo() and use the same Journal.
//
// Test hook: HOTBACKUP_TEST_PAUSE_AT=<kind>[:before|:after] makes the process stop at that step
// (before its action runs, or after it ran but before it is marked done; default after), print
// "hotbackup: test pause at <kind>:<when> pid <pid>" on stderr and wait, so a test can SIGKILL it
// there. SIGUSR2 lets it continue.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { Catalog } from './catalog.js';
import { rawRequest, request, TERMINAL_STATES } from './client.js';

export interface Undo {
  /** A registered undo action (see undoActions). */
  action: string;
  /** JSON-serialisable arguments of the action. */
  args: Record<string, unknown>;
  /** What the undo does, for people: "remove /backup/x". */
  description: string;
}

export interface UndoContext {
  catalog: Catalog;
  log: (line: string) => void;
}

/** Performs an undo; must be idempotent; returns what it did, for the report. */
export type UndoHandler = (args: any, ctx: UndoContext) => Promise<string> | string;

export const undoActions = new Map<string, UndoHandler>();

export function registerUndo(action: string, handler: UndoHandler): void {
  undoActions.set(action, handler);
}

export type JournalState = 'open' | 'committed' | 'rolling_back' | 'rolled_back' | 'rollback_failed' | 'cleaned_up';
export type StepState = 'pending' | 'done' | 'undone' | 'undo_failed';

export interface StepRecord {
  id: number;
  journal_id: number;
  seq: number;
  kind: string;
  description: string;
  undo_action: string;
  undo_args: Record<string, unknown>;
  state: StepState;
  created_at: number;
  done_at: number | null;
  undone_at: number | null;
  undo_result: string | null;
}

export interface JournalRecord {
  id: number;
  command: string;
  argv: string[];
  pid: number;
  pid_start: string | null;
  state: JournalState;
  created_at: number;
  finished_at: number | null;
  error: string | null;
}

/** What rollback did with one step. */
export interface StepReport {
  seq: number;
  kind: string;
  undo: string;
  before: StepState;
  after: StepState;
  result: string;
}

export interface JournalReport {
  journal: number;
  command: string;
  argv: string[];
  pid: number;
  state: JournalState;
  steps: StepReport[];
}

/** Start time of a process (field 22 of /proc/<pid>/stat), to tell a live owner from a reused pid. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** True when `pid` runs (a zombie, dead but not yet reaped, counts as gone). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return true;
  }
}

function ownerAlive(j: { pid: number; pid_start: string | null }): boolean {
  if (!isProcessAlive(j.pid)) return false;
  const now = processStartTime(j.pid);
  return j.pid_start == null || now == null || now === j.pid_start;
}

function parseStep(row: any): StepRecord {
  return { ...row, undo_args: JSON.parse(row.undo_args) };
}

function parseJournal(row: any): JournalRecord {
  return { ...row, argv: JSON.parse(row.argv) };
}

export interface JournalOptions {
  /** Environment for the test hook (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where progress lines go (stderr of the command). */
  log?: (line: string) => void;
}

export class Journal {
  private seq = 0;
  private readonly env: NodeJS.ProcessEnv;
  readonly log: (line: string) => void;

  private constructor(readonly catalog: Catalog, readonly id: number, opts: JournalOptions) {
    this.env = opts.env ?? process.env;
    this.log = opts.log ?? (() => {});
  }

  /** Opens a journal owned by this process. */
  static begin(catalog: Catalog, command: string, argv: string[], opts: JournalOptions = {}): Journal {
    const r = catalog.db.prepare(
      `INSERT INTO journals (command, argv, pid, pid_start, state, created_at) VALUES (?, ?, ?, ?, 'open', ?)`,
    ).run(command, JSON.stringify(argv), process.pid, processStartTime(process.pid), Date.now());
    return new Journal(catalog, Number(r.lastInsertRowid), opts);
  }

  /**
   * Runs one journaled action: writes `undo` first, runs `action`, marks the step done.
   * `action` may refine the undo's arguments once it knows more (e.g. a spawned pid) with `setUndoArgs`.
   */
  async step<T>(kind: string, undo: Undo, action: (h: { setUndoArgs(args: Record<string, unknown>): void }) => Promise<T> | T): Promise<T> {
    if (!undoActions.has(undo.action)) throw new Error(`journal: no undo action named ${undo.action}`);
    const seq = ++this.seq;
    const r = this.catalog.db.prepare(
      `INSERT INTO journal_steps (journal_id, seq, kind, description, undo_action, undo_args, state, created_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)`,
    ).run(this.id, seq, kind, undo.description, undo.action, JSON.stringify(undo.args), Date.now());
    const stepId = Number(r.lastInsertRowid);
    await this.testPause(kind, 'before');
    const result = await action({
      setUndoArgs: (args) => {
        this.catalog.db.prepare('UPDATE journal_steps SET undo_args = ? WHERE id = ?')
          .run(JSON.stringify({ ...undo.args, ...args }), stepId);
      },
    });
    await this.testPause(kind, 'after');
    this.catalog.db.prepare(`UPDATE journal_steps SET state = 'done', done_at = ? WHERE id = ?`).run(Date.now(), stepId);
    return result;
  }

  /** The work succeeded: its changes stay. */
  commit(): void {
    this.setState('committed');
  }

  /** Undoes every step in reverse order (on an error). */
  async rollback(error?: unknown): Promise<JournalReport> {
    if (error) {
      this.catalog.db.prepare('UPDATE journals SET error = ? WHERE id = ?')
        .run(error instanceof Error ? error.message : String(error), this.id);
    }
    return rollbackJournal(this.catalog, this.id, { log: this.log });
  }

  /** Undoes every step in reverse order as the normal end of a command that only needed them
   *  for a while (the demo's server and scratch directory). */
  async cleanup(): Promise<JournalReport> {
    return rollbackJournal(this.catalog, this.id, { log: this.log, finalState: 'cleaned_up' });
  }

  private setState(state: JournalState): void {
    this.catalog.db.prepare('UPDATE journals SET state = ?, finished_at = ? WHERE id = ?').run(state, Date.now(), this.id);
  }

  private async testPause(kind: string, when: 'before' | 'after'): Promise<void> {
    const spec = this.env.HOTBACKUP_TEST_PAUSE_AT;
    if (!spec) return;
    const [k, w = 'after'] = spec.split(':');
    if (k !== kind || w !== when) return;
    await new Promise<void>((resolve) => {
      const keepAlive = setInterval(() => {}, 1 << 30);
      process.once('SIGUSR2', () => {
        clearInterval(keepAlive);
        resolve();
      });
      // Announced only once SIGUSR2 is handled, so a test may send it as soon as it reads this.
      process.stderr.write(`hotbackup: test pause at ${kind}:${when} pid ${process.pid}\n`);
    });
  }
}

/** Runs `work` inside a journal: commit on success, rollback (and rethrow) on error. */
export async function withJournal<T>(catalog: Catalog, command: string, argv: string[], opts: JournalOptions,
  work: (j: Journal) => Promise<T>): Promise<T> {
  const j = Journal.begin(catalog, command, argv, opts);
  try {
    const r = await work(j);
    j.commit();
    return r;
  } catch (e) {
    const report = await j.rollback(e);
    for (const s of report.steps) opts.log?.(`undo ${s.kind}: ${s.result}`);
    throw e;
  }
}

export function getJournal(catalog: Catalog, id: number): JournalRecord | undefined {
  const row = catalog.db.prepare('SELECT * FROM journals WHERE id = ?').get(id);
  return row ? parseJournal(row) : undefined;
}

export function listJournals(catalog: Catalog): JournalRecord[] {
  return catalog.db.prepare('SELECT * FROM journals ORDER BY id').all().map(parseJournal);
}

export function journalSteps(catalog: Catalog, id: number): StepRecord[] {
  return catalog.db.prepare('SELECT * FROM journal_steps WHERE journal_id = ? ORDER BY seq').all(id).map(parseStep);
}

async function rollbackJournal(catalog: Catalog, id: number,
  opts: { log: (l: string) => void; finalState?: JournalState }): Promise<JournalReport> {
  const j = getJournal(catalog, id)!;
  catalog.db.prepare(`UPDATE journals SET state = 'rolling_back' WHERE id = ?`).run(id);
  const steps = journalSteps(catalog, id).filter((s) => s.state !== 'undone').reverse();
  const reports: StepReport[] = [];
  let failed = false;
  for (const s of steps) {
    const handler = undoActions.get(s.undo_action);
    let after: StepState;
    let result: string;
    try {
      if (!handler) throw new Error(`no undo action named ${s.undo_action} in this version of hotbackup`);
      result = await handler(s.undo_args, { catalog, log: opts.log });
      after = 'undone';
    } catch (e) {
      result = `FAILED: ${e instanceof Error ? e.message : String(e)}`;
      after = 'undo_failed';
      failed = true;
    }
    catalog.db.prepare('UPDATE journal_steps SET state = ?, undone_at = ?, undo_result = ? WHERE id = ?')
      .run(after, Date.now(), result, s.id);
    reports.push({ seq: s.seq, kind: s.kind, undo: s.description, before: s.state, after, result });
  }
  const state: JournalState = failed ? 'rollback_failed' : opts.finalState ?? 'rolled_back';
  catalog.db.prepare('UPDATE journals SET state = ?, finished_at = ? WHERE id = ?').run(state, Date.now(), id);
  return { journal: id, command: j.command, argv: j.argv, pid: j.pid, state, steps: reports };
}

/**
 * Rolls back the journals of CLI processes that died before finishing them. With `retryFailed`
 * (`hotbackup recover`), also retries journals whose earlier rollback failed. A journal is claimed
 * atomically (owner pid set to this process) so two CLIs never undo the same one.
 */
export async function recoverDeadJournals(catalog: Catalog,
  opts: { log?: (l: string) => void; retryFailed?: boolean } = {}): Promise<JournalReport[]> {
  const states = opts.retryFailed ? ['open', 'rolling_back', 'rollback_failed'] : ['open', 'rolling_back'];
  const candidates = catalog.db.prepare(
    `SELECT * FROM journals WHERE state IN (${states.map(() => '?').join(',')}) ORDER BY id DESC`,
  ).all(...states).map(parseJournal);
  const reports: JournalReport[] = [];
  const me = processStartTime(process.pid);
  for (const j of candidates) {
    const mine = j.pid === process.pid && j.pid_start === me;
    if (mine || (j.state !== 'rollback_failed' && ownerAlive(j))) continue;
    const claimed = catalog.db.prepare(
      `UPDATE journals SET pid = ?, pid_start = ?, state = 'rolling_back' WHERE id = ? AND pid = ? AND state = ?`,
    ).run(process.pid, me, j.id, j.pid, j.state);
    if (claimed.changes !== 1) continue;
    const report = await rollbackJournal(catalog, j.id, { log: opts.log ?? (() => {}) });
    reports.push({ ...report, pid: j.pid });
  }
  return reports;
}

// ---- Built-in undo actions -------------------------------------------------------------------

/** Removes a directory the step created (it did not exist before), with everything in it. */
registerUndo('remove_created_dir', ({ path }: { path: string }) => {
  if (!existsSync(path)) return `${path} does not exist; nothing to remove`;
  rmSync(path, { recursive: true, force: true });
  return `removed ${path}`;
});

/** Cancels the backup into `dest` on the server at `socket`, if it still runs, and waits for it to end. */
registerUndo('cancel_backup', async ({ socket, dest }: { socket: string; dest: string }) => {
  let s;
  try {
    s = await request(socket, { op: 'status' });
  } catch (e) {
    return `server at ${socket} unreachable (${(e as Error).message}); no backup to cancel`;
  }
  if (s.dest !== dest) return `the server is not backing up to ${dest}; nothing to cancel`;
  if (TERMINAL_STATES.has(s.state)) return `the backup to ${dest} had already ended (${s.state})`;
  const reply = await rawRequest(socket, { op: 'cancel' });
  if (!reply.ok && reply.error.code !== 'not_running') throw new Error(`cancel refused: ${reply.error.message}`);
  for (let i = 0; i < 600; i++) {
    s = await request(socket, { op: 'status' });
    // finished_at is set once the shim has also removed what it wrote.
    if (TERMINAL_STATES.has(s.state) && s.finished_at != null) return `cancelled the backup to ${dest} (state ${s.state})`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the backup to ${dest} did not stop after cancel (state ${s.state})`);
});

/** Marks the catalog entries written by a journal as rolled back. */
registerUndo('mark_backup_rolled_back', ({ journal_id }: { journal_id: number }, { catalog }) => {
  const r = catalog.db.prepare(
    `UPDATE backups SET state = 'rolled_back', error = ?, updated_at = ? WHERE journal_id = ? AND state != 'rolled_back'`,
  ).run(JSON.stringify({ code: 'rolled_back', message: 'the CLI undid this start', path: null }), Date.now(), journal_id);
  return r.changes ? `catalog entry marked rolled_back` : 'no catalog entry to mark';
});

/** Stops a process the step spawned (checked by pid and start time so a reused pid is never hit). */
registerUndo('kill_process', async ({ pid, pid_start }: { pid?: number; pid_start?: string | null }) => {
  if (!pid) return 'the process was never started';
  if (!isProcessAlive(pid) || (pid_start && processStartTime(pid) !== pid_start)) return `process ${pid} is not running`;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && isProcessAlive(pid) && processStartTime(pid) === pid_start; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (isProcessAlive(pid) && processStartTime(pid) === pid_start) process.kill(pid, 'SIGKILL');
  return `stopped process ${pid}`;
});

/** Removes a file or directory the step created. */
registerUndo('remove_path', ({ path }: { path: string }) => {
  try {
    statSync(path);
  } catch {
    return `${path} does not exist`;
  }
  rmSync(path, { recursive: true, force: true });
  return `removed ${path}`;
});
