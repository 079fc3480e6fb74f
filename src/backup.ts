// In-process control: a Node program running under the shim (LD_PRELOAD=libhotbackup.so,
// HOTBACKUP_SERVE=node) backs up its own files without a socket. The requests and replies are
// those of the control socket (docs/protocol.md); they go through the shim's hotbackup_request()
// via the addon.
//
//   import { backup } from 'hotbackup';
//   await backup.start('/backup/app-2026-11-21', { sources: ['/var/lib/app'], throttle: '20MB/s' });
//   await backup.throttle('off');
//   const final = await backup.wait({ onStatus: (s) => console.log(s.bytes_copied) });
import { type Addon, loadAddon } from './addon.js';
import { type BackupStatus, type Reply, RequestError, type Request, TERMINAL_STATES } from './client.js';
import { parseRate } from './units.js';

/** The shim is not loaded in this process (or is inert in it). */
export class ShimNotLoadedError extends Error {
  constructor(message: string, public readonly code: 'shim_not_loaded' | 'not_served' = 'shim_not_loaded') {
    super(message);
  }
}

export interface InProcessStartOptions {
  /** Directories to back up (absolute; default: this process's working directory). */
  sources?: string[];
  /** Copy rate limit: bytes per second, or a rate such as '20MB/s' (0 / 'off' = unlimited). */
  throttle?: number | string;
}

export interface WaitOptions {
  /** Called with every status polled. */
  onStatus?: (s: BackupStatus) => void;
  /** Milliseconds between polls (default 100). */
  pollMs?: number;
}

function rate(r: number | string | undefined): number {
  if (r === undefined) return 0;
  if (typeof r === 'number') {
    if (!Number.isSafeInteger(r) || r < 0) throw new RangeError(`throttle must be a non-negative integer of bytes per second, got ${r}`);
    return r;
  }
  return parseRate(r);
}

function addonOrThrow(addon?: Addon): Addon {
  return addon ?? loadAddon();
}

/** The in-process control API; `addon` is for tests. */
export function inProcessBackup(addon?: Addon) {
  const api = {
    /** Whether the shim is loaded in this process and serves it. */
    available(): boolean {
      const info = addonOrThrow(addon).shimInfo();
      return info.loaded && info.served !== false;
    },

    /** Where the loaded shim is, and whether it serves this process. */
    info() {
      return addonOrThrow(addon).shimInfo();
    },

    /** Sends one raw request (docs/protocol.md) and returns the reply as sent. */
    async raw(req: Request): Promise<Reply> {
      const a = addonOrThrow(addon);
      const info = a.shimInfo();
      if (!info.loaded) {
        throw new ShimNotLoadedError(
          'the hotbackup shim is not loaded in this process, so it cannot back itself up. Start it as ' +
            '`LD_PRELOAD=$(hotbackup lib-path) HOTBACKUP_SERVE=node node app.js` (HOTBACKUP_SERVE names the executable to serve)');
      }
      const text = await a.shimRequest(JSON.stringify(req));
      return JSON.parse(text) as Reply;
    },

    /** Sends one request; resolves with the status, rejects with RequestError on {ok:false}. */
    async request(req: Request): Promise<BackupStatus> {
      const reply = await api.raw(req);
      if (!reply.ok) {
        if (reply.error.code === 'not_served') {
          throw new ShimNotLoadedError(`the hotbackup shim is loaded but inert in this process (${reply.error.message}); ` +
            'set HOTBACKUP_SERVE to this executable\'s name (e.g. node) before starting it', 'not_served');
        }
        throw new RequestError(reply.error.code, reply.error.message, reply.error.path);
      }
      return reply.status;
    },

    /** Starts a backup of this process's files into `dest` (absolute, new or empty). */
    start(dest: string, opts: InProcessStartOptions = {}): Promise<BackupStatus> {
      return api.request({
        op: 'start', dest, throttle_bytes_per_sec: rate(opts.throttle),
        ...(opts.sources ? { sources: opts.sources } : {}),
      });
    },

    status(): Promise<BackupStatus> {
      return api.request({ op: 'status' });
    },

    /** Changes the copy rate of the running backup now ('off' or 0 = unlimited). */
    throttle(r: number | string): Promise<BackupStatus> {
      return api.request({ op: 'throttle', bytes_per_sec: rate(r) });
    },

    cancel(): Promise<BackupStatus> {
      return api.request({ op: 'cancel' });
    },

    /** Polls until the backup ends (done, failed, cancelled); resolves with the last status. */
    async wait(opts: WaitOptions = {}): Promise<BackupStatus> {
      for (;;) {
        const s = await api.status();
        opts.onStatus?.(s);
        if (TERMINAL_STATES.has(s.state)) return s;
        await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
      }
    },

    /** start + wait; rejects unless the backup ends `done`. */
    async run(dest: string, opts: InProcessStartOptions & WaitOptions = {}): Promise<BackupStatus> {
      await api.start(dest, opts);
      const s = await api.wait(opts);
      if (s.state !== 'done') {
        const e = s.error;
        throw new RequestError(e?.code ?? s.state, `the backup to ${dest} ended ${s.state}${e ? `: ${e.message}` : ''}`, e?.path);
      }
      return s;
    },
  };
  return api;
}

/** Control of the backups of this very process (the shim must be preloaded into it). */
export const backup = inProcessBackup();
