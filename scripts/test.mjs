#!/usr/bin/env node
// `npm test`: builds everything (release, ASan+UBSan and TSan shims with their native test
// programs), then runs every test file under test/ with node's test runner. The native test
// programs are run by test/*.test.ts files, so one runner reports every test.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quick = args.includes('--no-sanitizers');
const only = args.filter((a) => !a.startsWith('--'));

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`npm test: ${cmd} ${argv.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

run(process.execPath, ['scripts/build.mjs']);
if (!quick) {
  run(process.execPath, ['scripts/build.mjs', '--sanitize=address']);
  run(process.execPath, ['scripts/build.mjs', '--sanitize=thread']);
}
for (const v of quick ? ['shim'] : ['shim', 'shim-asan', 'shim-tsan']) {
  run('make', ['-C', 'native/shim', '-j2', `BUILD=${join(root, 'build', v)}`,
    ...(v === 'shim-asan' ? ['SANITIZE=address'] : v === 'shim-tsan' ? ['SANITIZE=thread'] : []), 'tests']);
}

const files = only.length
  ? only
  : readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join('test', f));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, HOTBACKUP_TEST_SANITIZERS: quick ? '0' : '1' },
});
process.exit(r.status ?? 1);
