// What every command module shares: the definition shape, the context a command runs in, the
// exit codes and the user-error class. One command = one module exporting defineCommand({...});
// main.ts registers them. A command's run() returns its exit code; nothing calls process.exit().
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { Catalog, openCatalog } from '../catalog.js';
import { RequestError, UnreachableError } from '../client.js';
import { shimPath } from '../lib-path.js';
import { UnitError } from '../units.js';

/** Exit codes of `hotbackup` (documented in README.md). */
export const EXIT = {
  /** Success (for `start --wait` and `demo`: the backup is `done` and checked). */
  OK: 0,
  /** The backup failed or was cancelled (`start --wait`), or the demo's checks failed. */
  BACKUP_FAILED: 1,
  /** Usage error: bad arguments, bad rate, unusable paths (dest not empty, inside a source, ...). */
  USAGE: 2,
  /** The server is unreachable: no socket, a dead process's socket, connection refused, or none found. */
  UNREACHABLE: 3,
  /** Anything else: an internal error, an unexpected reply, a catalog that cannot be opened. */
  INTERNAL: 4,
  /** Conflict with the server's state: a backup is already running (start), none is running (throttle, cancel). */
  CONFLICT: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An expected failure caused by the user's input or environment: one clear message, an exit code. */
export class UserError extends Error {
  constructor(message: string, public readonly exitCode: ExitCode = EXIT.USAGE, public readonly code = 'usage') {
    super(message);
  }
}

/** Exit code for a shim error code (docs/protocol.md "Error codes"). */
export function exitCodeForServerError(code: string): ExitCode {
  switch (code) {
    case 'busy':
    case 'not_running':
      return EXIT.CONFLICT;
    case 'not_served':
      return EXIT.UNREACHABLE;
    case 'bad_request':
    case 'line_too_long':
    case 'bad_path':
    case 'dest_not_empty':
    case 'dest_in_source':
    case 'source_in_dest':
    case 'source_missing':
      return EXIT.USAGE;
    default:
      return EXIT.INTERNAL;
  }
}

/** Turns any error into a user-facing message and exit code. */
export function classifyError(e: unknown): { message: string; exitCode: ExitCode; code: string } {
  if (e instanceof UserError) return { message: e.message, exitCode: e.exitCode, code: e.code };
  if (e instanceof UnitError) return { message: e.message, exitCode: EXIT.USAGE, code: 'bad_rate' };
  if (e instanceof UnreachableError) {
    return { message: unreachableMessage(e.socketPath, e.cause.code), exitCode: EXIT.UNREACHABLE, code: 'unreachable' };
  }
  if (e instanceof RequestError) {
    const hint = e.code === 'not_served'
      ? ' (the shim is loaded but inert in that process: check HOTBACKUP_SERVE)'
      : '';
    return { message: `the server refused: ${e.message}${e.path ? ` (${e.path})` : ''} [${e.code}]${hint}`, exitCode: exitCodeForServerError(e.code), code: e.code };
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (/did not answer within|closed the connection without a reply/.test(msg)) {
    return { message: msg, exitCode: EXIT.UNREACHABLE, code: 'unreachable' };
  }
  return { message: `internal error: ${e instanceof Error && e.stack ? e.stack : msg}`, exitCode: EXIT.INTERNAL, code: 'internal' };
}

export function unreachableMessage(socket: string, errno?: string): string {
  const pid = /\/(\d+)\.sock$/.exec(socket)?.[1];
  const why = errno === 'ENOENT' ? 'no such socket'
    : errno === 'ECONNREFUSED' ? `nothing listens there${pid ? ` (process ${pid} has exited?)` : ' (the server has exited?)'}`
    : errno === 'EACCES' ? 'permission denied (run as the server\'s user or root)'
    : errno ?? 'unreachable';
  return `no hotbackup server at ${socket}: ${why}. Is the server running with ` +
    `LD_PRELOAD=${shimPath()} HOTBACKUP_SOCKET=${socket}?`;
}

/** Where a command writes. Tests pass their own to run commands in-process. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export class Context {
  private catalogInstance?: Catalog;
  /** Set by main from --catalog. */
  catalogPath?: string;

  /** @param argv the command line as given to main(), recorded in journals. */
  constructor(readonly io: Io, readonly argv: string[] = []) {}

  get env(): NodeJS.ProcessEnv {
    return this.io.env;
  }

  /** A message for people: stderr, one line per call. */
  log(line: string): void {
    this.io.stderr.write(line.endsWith('\n') ? line : line + '\n');
  }

  /** Text result on stdout. */
  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** The one JSON document of --json. */
  outJson(doc: unknown): void {
    this.io.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  }

  catalog(): Catalog {
    if (!this.catalogInstance) {
      try {
        this.catalogInstance = openCatalog(this.catalogPath ?? this.env.HOTBACKUP_CATALOG, this.env);
      } catch (e) {
        throw new UserError(`cannot open the catalog: ${(e as Error).message} (set --catalog or HOTBACKUP_CATALOG)`, EXIT.INTERNAL, 'catalog');
      }
    }
    return this.catalogInstance;
  }

  close(): void {
    this.catalogInstance?.close();
  }
}

/** A command module's default export; its command string and description are in commands.ts. */
export interface CommandDef<A> {
  /** [command line, what it does] pairs shown in --help. */
  examples: [string, string][];
  /** Adds this command's options. */
  builder: (y: Argv) => Argv<A>;
  /** Talks to a server: gets --socket. */
  server?: boolean;
  run(args: ArgumentsCamelCase<A>, ctx: Context): Promise<number>;
}

/** Identity function: lets TypeScript infer a command's argument types from its builder. */
export function defineCommand<A>(def: CommandDef<A>): CommandDef<A> {
  return def;
}

/** The --socket option every server command takes. */
export function socketOption<T>(y: Argv<T>) {
  return y.option('socket', {
    type: 'string',
    describe: 'control socket of the server (default: $HOTBACKUP_SOCKET, else the one live socket in /tmp/hotbackup-<uid>/)',
    requiresArg: true,
  });
}

export function jsonOption<T>(y: Argv<T>) {
  return y.option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout and nothing else' });
}
