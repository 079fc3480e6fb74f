// The catalog and the undo journal, without a server: undo written before the action, rollback in
// reverse order, a dead CLI's journal rolled back by the next process, live owners left alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Catalog, defaultCatalogPath } from '../src/catalog.js';
import type { BackupStatus } from '../src/client.js';
import { getJournal, Journal, journalSteps, recoverDeadJournals, registerUndo, withJournal } from '../src/journal.js';

const tmp = mkdtempSync(join(tmpdir(), 'hb-cli-journal-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshCatalog = () => new Catalog(join(tmp, `cat-${++n}.db`));

const undone: string[] = [];
registerUndo('test_note', ({ name }: { name: string }) => {
  undone.push(name);
  return `noted ${name}`;
});
registerUndo('test_fail', () => {
  throw new Error('this undo fails on purpose');
});

describe('catalog', () => {
  test('default location: HOTBACKUP_CATALOG, else XDG_STATE_HOME, else ~/.local/state', () => {
    assert.equal(defaultCatalogPath({ HOTBACKUP_CATALOG: '/x/c.db', XDG_STATE_HOME: '/s', HOME: '/h' }), '/x/c.db');
    assert.equal(defaultCatalogPath({ XDG_STATE_HOME: '/s', HOME: '/h' }), '/s/hotbackup/catalog.db');
    assert.equal(defaultCatalogPath({ HOME: '/h' }), '/h/.local/state/hotbackup/catalog.db');
    assert.equal(defaultCatalogPath({ XDG_STATE_HOME: 'relative', HOME: '/h' }), '/h/.local/state/hotbackup/catalog.db');
  });

  test('records a backup and copies a status into it', () => {
    const c = freshCatalog();
    const id = c.addBackup({ socket: '/s.sock', server_pid: 42, sources: ['/data'], dest: '/b', throttle_bytes_per_sec: 5 });
    assert.equal(c.getBackup(id)!.state, 'starting');
    const s: BackupStatus = {
      state: 'done', dest: '/b', sources: ['/data'], bytes_total: 10, bytes_copied: 12, bytes_mirrored: 3, files_total: 2,
      files_copied: 2, throttle_bytes_per_sec: 7, rate_bytes_per_sec: 1, eta_seconds: null, started_at: 1000, cut_at: 2000,
      finished_at: 3000, cut_stall_us: 9, error: null, pid: 42, manifest: '/b/hotbackup_manifest.json',
    };
    c.updateFromStatus(id, s);
    const r = c.getBackup(id)!;
    assert.equal(r.state, 'done');
    assert.equal(r.bytes_copied, 12);
    assert.equal(r.throttle_bytes_per_sec, 7);
    assert.equal(r.cut_at, 2000);
    assert.equal(r.manifest, '/b/hotbackup_manifest.json');
    assert.deepEqual(r.sources, ['/data']);
    assert.equal(c.findForStatus('/s.sock', s)?.id, id);
    assert.equal(c.findForStatus('/s.sock', { ...s, dest: '/other' }), undefined);
    c.close();
  });
});

describe('journal', () => {
  test('the step and its undo are in the catalog before the action runs, done after', async () => {
    const c = freshCatalog();
    const j = Journal.begin(c, 'test', ['a']);
    await j.step('one', { action: 'test_note', args: { name: 'one' }, description: 'note one' }, () => {
      const [s] = journalSteps(c, j.id);
      assert.equal(s.state, 'pending');
      assert.equal(s.undo_action, 'test_note');
      assert.deepEqual(s.undo_args, { name: 'one' });
    });
    assert.equal(journalSteps(c, j.id)[0].state, 'done');
    j.commit();
    assert.equal(getJournal(c, j.id)!.state, 'committed');
    c.close();
  });

  test('an unknown undo action is refused before anything runs', async () => {
    const c = freshCatalog();
    const j = Journal.begin(c, 'test', []);
    let ran = false;
    await assert.rejects(j.step('x', { action: 'no_such_undo', args: {}, description: '' }, () => { ran = true; }), /no undo action/);
    assert.equal(ran, false);
    c.close();
  });

  test('on an error every step is undone in reverse order, including the one that failed', async () => {
    const c = freshCatalog();
    undone.length = 0;
    let jid = 0;
    await assert.rejects(withJournal(c, 'test', [], {}, async (j) => {
      jid = j.id;
      await j.step('a', { action: 'test_note', args: { name: 'a' }, description: 'a' }, () => {});
      await j.step('b', { action: 'test_note', args: { name: 'b' }, description: 'b' }, () => {});
      await j.step('c', { action: 'test_note', args: { name: 'c' }, description: 'c' }, () => {
        throw new Error('boom');
      });
    }), /boom/);
    assert.deepEqual(undone, ['c', 'b', 'a']);
    assert.deepEqual(journalSteps(c, jid).map((s) => s.state), ['undone', 'undone', 'undone']);
    const jr = getJournal(c, jid)!;
    assert.equal(jr.state, 'rolled_back');
    assert.equal(jr.error, 'boom');
    c.close();
  });

  test('a failing undo is recorded; the other steps are still undone', async () => {
    const c = freshCatalog();
    undone.length = 0;
    const j = Journal.begin(c, 'test', []);
    await j.step('a', { action: 'test_note', args: { name: 'a' }, description: 'a' }, () => {});
    await j.step('b', { action: 'test_fail', args: {}, description: 'b' }, () => {});
    const report = await j.rollback(new Error('x'));
    assert.equal(report.state, 'rollback_failed');
    assert.deepEqual(report.steps.map((s) => [s.kind, s.after]), [['b', 'undo_failed'], ['a', 'undone']]);
    assert.deepEqual(undone, ['a']);
    assert.match(journalSteps(c, j.id)[1].undo_result!, /on purpose/);
    c.close();
  });

  test('setUndoArgs refines the undo once the action knows more', async () => {
    const c = freshCatalog();
    undone.length = 0;
    const j = Journal.begin(c, 'test', []);
    await j.step('a', { action: 'test_note', args: { name: 'unknown' }, description: 'a' }, (h) => h.setUndoArgs({ name: 'known' }));
    await j.rollback();
    assert.deepEqual(undone, ['known']);
    c.close();
  });

  test('the journal of a SIGKILLed process is rolled back by the next one; a live owner is left alone', async () => {
    const dbPath = join(tmp, 'killed.db');
    const made = join(tmp, 'made-by-child');
    const script = join(tmp, 'child.mts');
    const journalModule = fileURLToPath(new URL('../src/journal.ts', import.meta.url));
    const catalogModule = fileURLToPath(new URL('../src/catalog.ts', import.meta.url));
    writeFileSync(script, `
      import { mkdirSync } from 'node:fs';
      import { Catalog } from ${JSON.stringify(catalogModule)};
      import { Journal } from ${JSON.stringify(journalModule)};
      const c = new Catalog(${JSON.stringify(dbPath)});
      const j = Journal.begin(c, 'child', ['make']);
      await j.step('make_dir', { action: 'remove_created_dir', args: { path: ${JSON.stringify(made)} }, description: 'remove it' },
        () => { mkdirSync(${JSON.stringify(made)}); });
      await j.step('second', { action: 'remove_path', args: { path: ${JSON.stringify(made + '.file')} }, description: 'remove file' },
        () => {});
      j.commit();
    `);
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, HOTBACKUP_TEST_PAUSE_AT: 'second:after' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('test pause at second:after')) resolve();
      });
      child.on('exit', () => reject(new Error(`child exited before pausing: ${err}`)));
    });
    const c = new Catalog(dbPath);
    assert.ok(existsSync(made));
    // Its owner still runs: not ours to undo.
    assert.deepEqual(await recoverDeadJournals(c), []);
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    const reports = await recoverDeadJournals(c);
    assert.equal(reports.length, 1);
    assert.equal(reports[0].state, 'rolled_back');
    assert.equal(reports[0].pid, child.pid);
    assert.deepEqual(reports[0].steps.map((s) => [s.kind, s.before, s.after]), [['second', 'pending', 'undone'], ['make_dir', 'done', 'undone']]);
    assert.equal(existsSync(made), false);
    // Rolled back once only.
    assert.deepEqual(await recoverDeadJournals(c), []);
    assert.deepEqual(journalSteps(c, reports[0].journal).map((s) => s.state), ['undone', 'undone']);
    c.close();
  });
});
