// The CLI against a real shim-loaded process (test/cli-writer.mjs under LD_PRELOAD), driven
// in-process (main([...])) and as a real process (node bin/hotbackup.js ...).
// No mocks of the shim, no timed assertions: slow backups are made slow with the throttle
// (1000 B/s for ~1 MiB of data) and ended with cancel.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { rawRequest } from '../src/client.js';
import { cli, cliEnv, cliProcess, hook, needShim, oneJson, scratch, SHIM, startServer, tree, waitEnded } from './cli-helpers.js';

const SLOW = '1000'; // B/s: 16 × 64 KiB takes ~17 minutes, so the backup is still running when we look

const BAD_RATES = ['fast', '-5MB/s', '0x', ''];

describe('start, status, list: a backup to the end', () => {
  test('status of an idle server, in-process and as a process', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const a = await cli(['status', '--json', '--socket', srv.socket], env);
    assert.equal(a.code, 0, a.stderr);
    const s = oneJson(a);
    assert.equal(s.state, 'idle');
    assert.equal(s.pid, srv.pid);
    for (const k of ['dest', 'sources', 'bytes_total', 'bytes_copied', 'bytes_mirrored', 'files_total', 'files_copied',
      'throttle_bytes_per_sec', 'rate_bytes_per_sec', 'eta_seconds', 'started_at', 'cut_at', 'finished_at', 'error']) {
      assert.ok(k in s, `status --json lacks ${k}`);
    }
    const b = await cliProcess(['status'], { ...env, HOTBACKUP_SOCKET: srv.socket });
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /state\s+idle/);
    assert.match(b.stdout, new RegExp(`pid ${srv.pid}`));
  });

  test('start --wait copies the server\'s working directory, exit 0, catalog says done', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const dest = join(dir, 'backup');
    const r = await cli(['start', dest, '--wait', '--socket', srv.socket], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /backup #1 done/);
    assert.match(r.stdout, /cut\s+\d{4}-/);
    assert.ok(existsSync(join(dest, 'hotbackup_manifest.json')), 'no manifest');
    assert.equal(readFileSync(join(dest, 'f003.dat')).length, 65536);
    const l = await cli(['list', '--json'], env);
    assert.equal(l.code, 0, l.stderr);
    const { backups } = oneJson(l);
    assert.equal(backups.length, 1);
    assert.equal(backups[0].state, 'done');
    assert.equal(backups[0].dest, dest);
    assert.equal(backups[0].server_pid, srv.pid);
    assert.deepEqual(backups[0].sources, [srv.data]);
    assert.ok(backups[0].cut_at > 0 && backups[0].bytes_copied > 0 && backups[0].files_copied >= 16);
    const text = await cliProcess(['list'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID\s+STATE/m);
    assert.match(text.stdout, new RegExp(`^1\\s+done\\s.*${dest}`, 'm'));
  });

  test('start --json without --wait (as a process), then list reconciles the entry to done', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const dest = join(dir, 'b2');
    const r = await cliProcess(['start', dest, '--source', srv.data, '--json', '--socket', srv.socket], env);
    assert.equal(r.code, 0, r.stderr);
    const doc = oneJson(r);
    assert.equal(doc.id, 1);
    assert.equal(doc.socket, srv.socket);
    assert.equal(doc.status.dest, dest);
    assert.deepEqual(doc.status.sources, [srv.data]);
    assert.ok(['copying', 'finishing', 'done'].includes(doc.status.state), doc.status.state);
    const end = await waitEnded(srv.socket);
    assert.equal(end.state, 'done');
    const l = oneJson(await cliProcess(['list', '--json'], env));
    assert.equal(l.backups[0].state, 'done');
    assert.equal(l.backups[0].cut_at, end.cut_at);
  });

  test('a relative DEST is resolved against the CLI\'s working directory, not the server\'s', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const elsewhere = join(dir, 'cli-cwd');
    mkdirSync(elsewhere);
    const r = await cli(['start', 'rel', '--wait', '--socket', srv.socket], env, elsewhere);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(elsewhere, 'rel', 'hotbackup_manifest.json')));
    assert.ok(!existsSync(join(srv.data, 'rel')));
  });

  test('status --watch --json prints NDJSON until the backup ends', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    assert.equal((await cli(['start', join(dir, 'b'), '--throttle', SLOW, '--socket', srv.socket], env)).code, 0);
    const watching = cliProcess(['status', '--watch', '--json', '--interval', '50', '--socket', srv.socket], env);
    // Let it print at least one copying line, then end the backup.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await cli(['cancel', '--socket', srv.socket], env)).code, 0);
    const w = await watching;
    assert.equal(w.code, 0, w.stderr);
    const lines = w.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 1);
    assert.equal(lines.at(-1).state, 'cancelled');
    for (const l of lines.slice(0, -1)) assert.ok(['copying', 'finishing'].includes(l.state), l.state);
  });
});

describe('throttle and cancel of a running backup', () => {
  test('a backup started at one rate and changed twice reports each new rate; cancel removes DEST', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const catalog = join(dir, 'cat.db');
    const env = cliEnv(catalog);
    const dest = join(dir, 'backup');
    const st = await cli(['start', dest, '--throttle', SLOW, '--socket', srv.socket], env);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /1000 B\/s/);
    assert.equal((await srv.status()).throttle_bytes_per_sec, 1000);

    const t1 = await cli(['throttle', '2kB/s', '--socket', srv.socket], env);
    assert.equal(t1.code, 0, t1.stderr);
    assert.match(t1.stdout, /throttle set to 2000 B\/s \(2 kB\/s\)/);
    const s1 = oneJson(await cli(['status', '--json', '--socket', srv.socket], env));
    assert.equal(s1.throttle_bytes_per_sec, 2000);
    assert.equal(s1.state, 'copying');

    const t2 = await cliProcess(['throttle', '1KiB/s', '--json', '--socket', srv.socket], env);
    assert.equal(t2.code, 0, t2.stderr);
    const j2 = oneJson(t2);
    assert.equal(j2.throttle_bytes_per_sec, 1024);
    assert.equal(j2.human, '1024 B/s (1 KiB/s)');
    assert.equal(j2.status.throttle_bytes_per_sec, 1024);
    assert.equal((await srv.status()).throttle_bytes_per_sec, 1024);

    const c = await cliProcess(['cancel', '--json', '--socket', srv.socket], env);
    assert.equal(c.code, 0, c.stderr);
    const cj = oneJson(c);
    assert.equal(cj.status.state, 'cancelled');
    assert.equal(cj.dest_removed, true);
    assert.ok(!existsSync(dest), 'the partial destination is still there');
    const l = oneJson(await cli(['list', '--json'], env));
    assert.equal(l.backups[0].state, 'cancelled');
    assert.equal(l.backups[0].throttle_bytes_per_sec, 1024);
  });

  test('a second start while one runs: exit 5, nothing created, the first goes on', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    assert.equal((await cli(['start', join(dir, 'one'), '--throttle', SLOW, '--socket', srv.socket], env)).code, 0);
    const two = join(dir, 'two');
    const r = await cliProcess(['start', two, '--socket', srv.socket], env);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /already running.*hotbackup cancel/s);
    assert.ok(!existsSync(two));
    const s = await srv.status();
    assert.equal(s.state, 'copying');
    assert.equal(s.dest, join(dir, 'one'));
    // The shim refuses it too (a CLI that skipped its own check): busy.
    const raw = await rawRequest(srv.socket, { op: 'start', dest: two });
    assert.equal(raw.ok, false);
    assert.equal(!raw.ok && raw.error.code, 'busy');
    assert.equal(oneJson(await cli(['list', '--json'], env)).backups.length, 1);
    assert.equal((await cli(['cancel', '--socket', srv.socket], env)).code, 0);
  });

  test('cancel and throttle with nothing running: exit 5 with a clear message', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    for (const args of [['cancel'], ['throttle', '5MB/s']]) {
      const r = await cli([...args, '--socket', srv.socket], env);
      assert.equal(r.code, 5, `${args}: ${r.stderr}`);
      assert.match(r.stderr, /not_running/);
      const p = await cliProcess([...args, '--json', '--socket', srv.socket], env);
      assert.equal(p.code, 5);
      assert.equal(oneJson(p).error.code, 'not_running');
    }
    assert.equal((await srv.status()).state, 'idle');
  });

  test('start --wait of a backup that fails exits 1 and the catalog says failed', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir, { hooks: true });
    const env = cliEnv(join(dir, 'cat.db'));
    await hook(srv.socket, { op: 'test_fault', call: 'write', nth: 1, errno: 28 });
    const r = await cli(['start', join(dir, 'b'), '--wait', '--json', '--socket', srv.socket], env);
    assert.equal(r.code, 1, r.stderr);
    const doc = oneJson(r);
    assert.equal(doc.status.state, 'failed');
    assert.equal(doc.status.error.code, 'ENOSPC');
    const l = oneJson(await cli(['list', '--json'], env));
    assert.equal(l.backups[0].state, 'failed');
    assert.equal(l.backups[0].error.code, 'ENOSPC');
    assert.ok(!existsSync(join(dir, 'b')), 'the failed backup\'s DEST is left behind');
  });
});

describe('bad input: a clear message, the right exit code, nothing left behind', () => {
  test('an unknown socket: exit 3, names the socket and how to run the server', async (t) => {
    const dir = scratch(t);
    const env = cliEnv(join(dir, 'cat.db'));
    const sock = join(dir, 'nobody.sock');
    for (const run of [cli, cliProcess]) {
      const r = await run(['status', '--socket', sock], env);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`no hotbackup server at ${sock}: no such socket`));
      assert.ok(r.stderr.includes(`LD_PRELOAD=${SHIM}`));
      assert.equal(r.stdout, '');
    }
    const j = await cli(['status', '--json', '--socket', sock], env);
    assert.equal(j.code, 3);
    assert.deepEqual(Object.keys(oneJson(j).error).sort(), ['code', 'exit_code', 'message']);
    assert.equal(oneJson(j).error.exit_code, 3);
  });

  test('the socket of a dead process: exit 3, nothing listens', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    await srv.stop(); // SIGKILL: the shim cannot remove its socket file
    const r = await cli(['status', '--socket', srv.socket], env);
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(`no hotbackup server at ${srv.socket}`), r.stderr);
    if (existsSync(srv.socket)) assert.match(r.stderr, /nothing listens/);
    const s = await cliProcess(['start', join(dir, 'b'), '--socket', srv.socket], env);
    assert.equal(s.code, 3);
    assert.ok(!existsSync(join(dir, 'b')));
  });

  test('socket discovery: the one live <pid>.sock; stale ones ignored; several or none is an error', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const socks = join(dir, 'socks');
    mkdirSync(socks);
    const a = await startServer(t, join(dir, 'a'));
    const env = cliEnv(join(dir, 'cat.db'), { HOTBACKUP_SOCKET_DIR: socks });
    // A pid that certainly is not running: a child that has exited.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(join(socks, `${dead.pid}.sock`), '');
    const none = await cli(['status'], env);
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stderr, /no live socket in/);
    assert.match(none.stderr, new RegExp(`stale: process ${dead.pid} is not running`));
    assert.match(none.stderr, /LD_PRELOAD=/);

    symlinkSync(a.socket, join(socks, `${a.pid}.sock`));
    const one = await cli(['status', '--json'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(oneJson(one).pid, a.pid);

    const b = await startServer(t, join(dir, 'b'));
    symlinkSync(b.socket, join(socks, `${b.pid}.sock`));
    const two = await cliProcess(['status'], env);
    assert.equal(two.code, 2, two.stderr);
    assert.match(two.stderr, /several hotbackup servers/);
    assert.ok(two.stderr.includes(`pid ${a.pid}`) && two.stderr.includes(`pid ${b.pid}`));
    // HOTBACKUP_SOCKET wins over discovery.
    const chosen = await cli(['status', '--json'], { ...env, HOTBACKUP_SOCKET: b.socket });
    assert.equal(oneJson(chosen).pid, b.pid);
  });

  test('a non-empty DEST: exit 2, its content untouched, no catalog entry', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const dest = join(dir, 'full');
    mkdirSync(dest);
    writeFileSync(join(dest, 'precious'), 'keep me');
    for (const run of [cli, cliProcess]) {
      const r = await run(['start', dest, '--socket', srv.socket], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /is not empty/);
      assert.deepEqual(tree(dest), ['precious']);
    }
    assert.equal((await srv.status()).state, 'idle');
    assert.deepEqual(oneJson(await cli(['list', '--json'], env)).backups, []);
    const raw = await rawRequest(srv.socket, { op: 'start', dest });
    assert.equal(!raw.ok && raw.error.code, 'dest_not_empty');
  });

  test('DEST inside a source (given, default, or relative to a cwd inside it): exit 2, nothing created', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const before = tree(srv.data).filter((n) => n.endsWith('.dat'));
    const cases: [string[], string][] = [
      [['start', join(srv.data, 'bk')], dir], // default source = the server's cwd
      [['start', join(srv.data, 'bk'), '--source', srv.data], dir],
      [['start', 'bk'], srv.data], // relative DEST, CLI run from inside the source
      [['start', srv.data], dir], // DEST = the source
    ];
    for (const [args, cwd] of cases) {
      const r = await cli([...args, '--socket', srv.socket], env, cwd);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /inside the source|not empty/);
      assert.ok(!existsSync(join(srv.data, 'bk')));
    }
    const p = await cliProcess(['start', join(srv.data, 'bk'), '--socket', srv.socket], env);
    assert.equal(p.code, 2);
    assert.match(p.stderr, /inside the source/);
    assert.deepEqual(tree(srv.data).filter((n) => n.endsWith('.dat')), before);
    assert.equal((await srv.status()).state, 'idle');
    // The shim refuses it as well.
    const raw = await rawRequest(srv.socket, { op: 'start', dest: join(srv.data, 'bk') });
    assert.equal(!raw.ok && raw.error.code, 'dest_in_source');
    assert.ok(!existsSync(join(srv.data, 'bk')));
  });

  test('a relative path sent to the shim is refused (bad_path); the CLI never sends one', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const raw = await rawRequest(srv.socket, { op: 'start', dest: 'relative/backup' });
    assert.equal(!raw.ok && raw.error.code, 'bad_path');
    const env = cliEnv(join(dir, 'cat.db'));
    const r = await cli(['start', '', '--socket', srv.socket], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /DEST is empty/);
  });

  test('a source that does not exist: exit 2', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const r = await cli(['start', join(dir, 'b'), '--source', join(dir, 'nope'), '--socket', srv.socket], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /does not exist/);
    assert.ok(!existsSync(join(dir, 'b')));
  });

  test('every bad rate form, for throttle and start --throttle: exit 2 with the accepted forms', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    assert.equal((await cli(['start', join(dir, 'run'), '--throttle', SLOW, '--socket', srv.socket], env)).code, 0);
    for (const rate of BAD_RATES) {
      for (const run of [cli, cliProcess]) {
        const r = await run(['throttle', rate, '--socket', srv.socket], env);
        assert.equal(r.code, 2, `throttle ${JSON.stringify(rate)}: ${r.stderr}`);
        assert.match(r.stderr, /Accepted: .*512KiB\/s.*"off"/);
      }
      const dest = join(dir, `b-${BAD_RATES.indexOf(rate)}`);
      const s = await cli(['start', dest, `--throttle=${rate}`, '--socket', srv.socket], env);
      assert.equal(s.code, 2, `start --throttle=${JSON.stringify(rate)}: ${s.stderr}`);
      assert.match(s.stderr, /Accepted: /);
      assert.ok(!existsSync(dest));
    }
    // None of them reached the server: the rate is still the one set at start.
    assert.equal((await srv.status()).throttle_bytes_per_sec, 1000);
    assert.equal((await cli(['cancel', '--socket', srv.socket], env)).code, 0);
  });

  test('usage errors: unknown command (with a suggestion), missing DEST, unknown option: exit 2', async (t) => {
    const dir = scratch(t);
    const env = cliEnv(join(dir, 'cat.db'));
    const a = await cli(['statsu'], env);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /Did you mean status/);
    const b = await cliProcess(['start'], env);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /Not enough non-option arguments/);
    const c = await cli(['status', '--frobnicate'], env);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /Unknown argument/);
    const d = await cli(['status', '--json', '--frobnicate'], env);
    assert.equal(oneJson(d).error.exit_code, 2);
    const h = await cli(['start', '--help'], env);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /--throttle/);
    assert.match(h.stdout, /Examples:/);
  });

  test('lib-path prints the absolute path of the shim', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    for (const run of [cli, cliProcess]) {
      const r = await run(['lib-path'], cliEnv(join(dir, 'cat.db')));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${SHIM}\n`);
    }
  });
});
