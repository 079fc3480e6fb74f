// The environment of a native test program (native/shim/tests): served, its own socket and
// temp dir, nothing inherited that would change which process the shim serves, and the
// sanitizer options of its build.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `build`: 'release', 'asan' or 'tsan'. */
export function nativeTestEnv(build: string, tmp: string, opts: { hooks?: boolean } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOTBACKUP_SERVE: '*',
    HOTBACKUP_SOCKET: join(tmp, 'control.sock'),
    TMPDIR: tmp,
  };
  if (opts.hooks ?? true) env.HOTBACKUP_TEST_HOOKS = '1';
  else delete env.HOTBACKUP_TEST_HOOKS;
  delete env.HOTBACKUP_SERVED_PID;
  delete env.LD_PRELOAD;
  if (build === 'asan') {
    env.ASAN_OPTIONS = env.ASAN_OPTIONS ?? 'abort_on_error=0:detect_leaks=1';
    env.UBSAN_OPTIONS = env.UBSAN_OPTIONS ?? 'print_stacktrace=1';
  }
  // symbolize=0: TSan's in-process symbolizer opens /proc/self/exe through the shim's open()
  // wrapper while it holds its report lock, and a nested report then deadlocks it. Runners
  // symbolize reports afterwards if they need to.
  if (build === 'tsan') env.TSAN_OPTIONS = env.TSAN_OPTIONS ?? 'second_deadlock_stack=1:symbolize=0';
  return env;
}

export interface NativeResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

/** Runs a native test program in a fresh temp dir with nativeTestEnv(); `timeoutMs` is a
 *  liveness bound only (a hung backup or a deadlock), never a performance assertion. With
 *  `keepOnFailure` a failing run keeps its temp dir for inspection. */
export function runNativeProgram(bin: string, args: string[], build: string, tmpPrefix: string, timeoutMs: number,
  opts: { hooks?: boolean; keepOnFailure?: boolean; env?: (env: NodeJS.ProcessEnv) => void } = {}): Promise<NativeResult> {
  const tmp = mkdtempSync(join(tmpdir(), tmpPrefix));
  const env = nativeTestEnv(build, tmp, { hooks: opts.hooks });
  opts.env?.(env);
  return new Promise((resolvePromise) => {
    const child = spawn(bin, args, { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 || !opts.keepOnFailure) rmSync(tmp, { recursive: true, force: true });
      resolvePromise({ code, signal, output, timedOut });
    });
  });
}
