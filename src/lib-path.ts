// Where the built native pieces live. The shim is built by scripts/build.mjs into build/shim/.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (the folder holding package.json), from dist/ or src/ alike. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Absolute path of libhotbackup.so; `variant` selects a sanitizer build ('asan', 'tsan'). */
export function shimPath(variant?: 'asan' | 'tsan'): string {
  return join(packageRoot, 'build', variant ? `shim-${variant}` : 'shim', 'libhotbackup.so');
}

/** Like shimPath(), but throws a message that says how to build it when it is missing. */
export function requireShimPath(variant?: 'asan' | 'tsan'): string {
  const p = shimPath(variant);
  if (!existsSync(p)) {
    throw new Error(`libhotbackup.so is not built (looked for ${p}); run \`npm install\` or \`node scripts/build.mjs\``);
  }
  return p;
}
