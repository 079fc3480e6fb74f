// The undo journal of `hotbackup start` with the CLI SIGKILLed at each journaled step, before and
// after its action: the next hotbackup command (any command) rolls the steps back, or
// `hotbackup recover` does it explicitly and reports each one. Real server, real processes.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Catalog } from '../src/catalog.js';
import { isProcessAlive, journalSteps, listJournals } from '../src/journal.js';
import { cli, cliEnv, cliPausedAt, cliProcess, needShim, oneJson, scratch, startServer, waitEnded } from './cli-helpers.js';

const STEPS = ['record', 'create_dest', 'start_backup'] as const;

function killAndWait(child: import('node:child_process').ChildProcess): Promise<void> {
  return new Promise((r) => {
    child.on('exit', () => r());
    child.kill('SIGKILL');
  });
}

describe('SIGKILL at each journaled step of start', () => {
  for (const step of STEPS) {
    for (const when of ['before', 'after'] as const) {
      for (const how of ['next command', 'recover'] as const) {
        test(`killed at ${step}:${when}, undone by the ${how}`, async (t) => {
          if (!needShim(t)) return;
          const dir = scratch(t);
          const srv = await startServer(t, dir);
          const catalogPath = join(dir, 'cat.db');
          const env = cliEnv(catalogPath);
          const dest = join(dir, 'deep', 'backup');
          const { child } = await cliPausedAt(['start', dest, '--throttle', '1000', '--socket', srv.socket], env, `${step}:${when}`);

          // The pause is where it says: what the steps so far did is visible.
          const idx = STEPS.indexOf(step) + (when === 'after' ? 1 : 0); // steps whose action ran
          assert.equal(existsSync(dest), idx >= 2, 'dest exists iff create_dest ran');
          const s = await srv.status();
          assert.equal(s.state === 'copying' || s.state === 'finishing', idx >= 3, `server state ${s.state}`);
          await killAndWait(child);

          let c = new Catalog(catalogPath);
          const [j] = listJournals(c);
          assert.equal(j.state, 'open');
          assert.equal(journalSteps(c, j.id).length, STEPS.indexOf(step) + 1);
          c.close();

          if (how === 'recover') {
            // In-process here; as a process in the demo tests below.
            const r = await cli(['recover', '--json'], env);
            assert.equal(r.code, 0, r.stderr);
            const { journals } = oneJson(r);
            assert.equal(journals.length, 1);
            assert.equal(journals[0].state, 'rolled_back');
            assert.deepEqual(journals[0].steps.map((x: any) => x.kind), STEPS.slice(0, STEPS.indexOf(step) + 1).reverse());
            assert.ok(journals[0].steps.every((x: any) => x.after === 'undone'), JSON.stringify(journals[0].steps));
            const text = await cliProcess(['recover'], env);
            assert.match(text.stdout, /nothing to recover/);
          } else {
            const r = await cliProcess(['list', '--json'], env);
            assert.equal(r.code, 0, r.stderr);
            assert.match(r.stderr, /rolled back the unfinished `hotbackup start/);
            for (const k of STEPS.slice(0, STEPS.indexOf(step) + 1)) assert.match(r.stderr, new RegExp(`undo ${k}: `));
            const { backups } = oneJson(r);
            assert.ok(backups.every((b: any) => b.state === 'rolled_back'), JSON.stringify(backups));
          }

          // Every step undone, and the catalog says so.
          c = new Catalog(catalogPath);
          const [after] = listJournals(c);
          assert.equal(after.state, 'rolled_back');
          assert.ok(journalSteps(c, after.id).every((x) => x.state === 'undone'));
          for (const b of c.listBackups()) assert.equal(b.state, 'rolled_back');
          c.close();
          assert.ok(!existsSync(join(dir, 'deep')), 'the created directories are removed');
          const end = await waitEnded(srv.socket);
          assert.ok(end.state === 'idle' || end.state === 'cancelled', `server state ${end.state}`);
          assert.equal(end.state, idx >= 3 ? 'cancelled' : 'idle');
        });
      }
    }
  }

  test('killed while waiting (after the journal committed): the backup finishes on its own and is kept', async (t) => {
    if (!needShim(t)) return;
    const dir = scratch(t);
    const srv = await startServer(t, dir);
    const env = cliEnv(join(dir, 'cat.db'));
    const dest = join(dir, 'backup');
    // Pause after start_backup is done would be inside the journal; use a slow backup and kill during --wait.
    const { child } = await cliPausedAt(['start', dest, '--wait', '--throttle', '1000', '--socket', srv.socket], env, 'start_backup:after');
    let exited = false;
    child.on('exit', () => (exited = true));
    process.kill(child.pid!, 'SIGUSR2'); // continue: the journal commits, --wait begins
    for (;;) {
      assert.equal(exited, false, 'hotbackup exited instead of continuing after SIGUSR2');
      const c = new Catalog(join(dir, 'cat.db'));
      const committed = listJournals(c)[0]?.state === 'committed';
      c.close();
      if (committed) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await killAndWait(child);
    assert.equal((await cli(['throttle', 'off', '--socket', srv.socket], env)).code, 0);
    const end = await waitEnded(srv.socket);
    assert.equal(end.state, 'done');
    const r = await cli(['list', '--json'], env);
    assert.doesNotMatch(r.stderr, /rolled back/);
    assert.equal(oneJson(r).backups[0].state, 'done');
    assert.ok(existsSync(join(dest, 'hotbackup_manifest.json')));
  });
});

describe('SIGKILL inside the demo', () => {
  for (const at of ['spawn_server:after', 'start_backup:after']) {
    test(`killed at ${at}: recover stops its server and removes its scratch directory`, async (t) => {
      if (!needShim(t)) return;
      const dir = scratch(t);
      const env = cliEnv(join(dir, 'cat.db'));
      const { child, stderr } = await cliPausedAt(['demo', '--warmup', '200'], env, at);
      const workdir = /scratch directory (\S+)/.exec(stderr())?.[1];
      assert.ok(workdir && existsSync(workdir), stderr());
      await killAndWait(child);
      const c = new Catalog(join(dir, 'cat.db'));
      const [j] = listJournals(c);
      const writerPid = Number(journalSteps(c, j.id).find((s) => s.kind === 'spawn_server')!.undo_args.pid);
      c.close();
      assert.ok(writerPid > 0 && isProcessAlive(writerPid), 'the bank writer should outlive the killed CLI');
      const r = await cliProcess(['recover', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      const { journals } = oneJson(r);
      assert.equal(journals.length, 1);
      assert.equal(journals[0].command, 'demo');
      const kinds = at.startsWith('start_backup') ? ['start_backup', 'spawn_server', 'workdir'] : ['spawn_server', 'workdir'];
      assert.deepEqual(journals[0].steps.map((x: any) => x.kind), kinds);
      assert.ok(journals[0].steps.every((x: any) => x.after === 'undone'), JSON.stringify(journals[0].steps));
      assert.equal(isProcessAlive(writerPid), false, 'the bank writer still runs');
      assert.equal(existsSync(workdir), false, 'the scratch directory is still there');
    });
  }
});
