// The environment of a native test program (native/shim/tests): served, its own socket and
// temp dir, nothing inherited that would change which process the shim serves, and the
// sanitizer options of its build.
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
