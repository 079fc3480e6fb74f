// Which server to talk to. The rule (README "Finding the server"):
//   1. --socket PATH;
//   2. else $HOTBACKUP_SOCKET;
//   3. else the one live socket in the shim's default directory /tmp/hotbackup-<uid>/, whose
//      files are named <pid>.sock; a socket whose pid is not running is stale and ignored.
//      ($HOTBACKUP_SOCKET_DIR replaces that directory for the lookup, for tests and unusual setups.)
//   Zero live sockets, or more than one, is an error that lists what was found.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isProcessAlive } from './journal.js';

export interface SocketCandidate {
  path: string;
  pid: number | null;
  live: boolean;
  /** The process's executable name (/proc/<pid>/comm), when live. */
  command: string | null;
}

export function defaultSocketDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOTBACKUP_SOCKET_DIR || `/tmp/hotbackup-${process.getuid?.() ?? 0}`;
}

/** Every *.sock in the directory, with whether its process is alive. */
export function listSockets(dir: string): SocketCandidate[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.sock')).sort().map((n) => {
    const m = /^(\d+)\.sock$/.exec(n);
    const pid = m ? Number(m[1]) : null;
    const live = pid != null && isProcessAlive(pid);
    let command: string | null = null;
    if (live) {
      try {
        command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch { /* gone meanwhile */ }
    }
    return { path: join(dir, n), pid, live, command };
  });
}

export type Resolution =
  | { ok: true; socket: string; how: 'option' | 'env' | 'discovered' }
  | { ok: false; reason: 'none' | 'ambiguous'; dir: string; candidates: SocketCandidate[] };

export function resolveSocket(option: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Resolution {
  if (option) return { ok: true, socket: resolve(cwd, option), how: 'option' };
  if (env.HOTBACKUP_SOCKET) return { ok: true, socket: resolve(cwd, env.HOTBACKUP_SOCKET), how: 'env' };
  const dir = defaultSocketDir(env);
  const candidates = listSockets(dir);
  const live = candidates.filter((c) => c.live);
  if (live.length === 1) return { ok: true, socket: live[0].path, how: 'discovered' };
  return { ok: false, reason: live.length ? 'ambiguous' : 'none', dir, candidates };
}
