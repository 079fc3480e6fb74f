// Client of the shim's control socket: one JSON object per line each way (docs/protocol.md).
import { createConnection } from 'node:net';

export type BackupState = 'idle' | 'copying' | 'finishing' | 'done' | 'failed' | 'cancelled';

export interface BackupError { code: string; message: string; path?: string | null }

export interface BackupStatus {
  state: BackupState;
  dest: string | null;
  sources: string[];
  bytes_total: number;
  bytes_copied: number;
  bytes_mirrored: number;
  files_total: number;
  files_copied: number;
  throttle_bytes_per_sec: number;
  rate_bytes_per_sec: number;
  eta_seconds: number | null;
  started_at: number | null;
  cut_at: number | null;
  finished_at: number | null;
  cut_stall_us: number | null;
  error: BackupError | null;
  pid: number;
  manifest: string | null;
}

export type Request =
  | { op: 'start'; dest: string; sources?: string[]; throttle_bytes_per_sec?: number }
  | { op: 'status' }
  | { op: 'throttle'; bytes_per_sec: number }
  | { op: 'cancel' }
  | { op: string; [k: string]: unknown };

export type Reply =
  | { ok: true; status: BackupStatus; [k: string]: unknown }
  | { ok: false; error: BackupError };

/** The server could not be reached at all (no socket, dead process, refused). */
export class UnreachableError extends Error {
  constructor(public readonly socketPath: string, public readonly cause: NodeJS.ErrnoException) {
    super(`no hotbackup server at ${socketPath} (${cause.code ?? cause.message})`);
  }
}

/** The server answered with {ok:false}. */
export class RequestError extends Error {
  constructor(public readonly code: string, message: string, public readonly path?: string | null) {
    super(message);
  }
}

/** Sends one request and returns the reply as sent (ok or not). */
export function rawRequest(socketPath: string, req: Request, timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    let settled = false;
    const finish = (err: Error | null, reply?: Reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => finish(new Error(`hotbackup server at ${socketPath} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(null, JSON.parse(buf.slice(0, nl)) as Reply);
      } catch (e) {
        finish(new Error(`hotbackup server at ${socketPath} sent a reply that is not JSON: ${buf.slice(0, 200)}`));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(settled ? null : new UnreachableError(socketPath, e)));
    sock.on('close', () => finish(new Error(`hotbackup server at ${socketPath} closed the connection without a reply`)));
  });
}

/** Sends one request; resolves with the status, rejects with RequestError on {ok:false}. */
export async function request(socketPath: string, req: Request, timeoutMs?: number): Promise<BackupStatus> {
  const reply = await rawRequest(socketPath, req, timeoutMs);
  if (!reply.ok) throw new RequestError(reply.error.code, reply.error.message, reply.error.path);
  return reply.status;
}

export const TERMINAL_STATES: ReadonlySet<BackupState> = new Set(['idle', 'done', 'failed', 'cancelled']);

/** Polls status until the backup leaves copying/finishing; calls onStatus on every poll. */
export async function waitForEnd(
  socketPath: string,
  onStatus?: (s: BackupStatus) => void,
  pollMs = 200,
): Promise<BackupStatus> {
  for (;;) {
    const s = await request(socketPath, { op: 'status' });
    onStatus?.(s);
    if (TERMINAL_STATES.has(s.state)) return s;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
