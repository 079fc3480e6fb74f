// MariaDB 10.11 under the shim, binlog on, under sysbench, bank transfers, DDL churn, a
// model-checked DDL/DML sequence and an Aria writer, with a hot backup taken by the CLI: the
// backup must equal the byte-exact reference the shim copied at the cut, and the restored server
// must recover, check, and hold every state the workloads left as a prefix at the cut (see
// test/mariadb-consistency-run.ts). On the default settings and with eager page flushing, with a
// disk-heavy process beside the server. The backup is throttled so that it overlaps the load for
// seconds; nothing asserts a duration. A failed run keeps its directory (backup, reference, logs).
import assert from 'node:assert/strict';
import test from 'node:test';
import { CONFIGS, consistencyRun } from './mariadb-consistency-run.js';
import { mariadbOrSkip, scratch } from './mariadb-helpers.js';

const { install, skip } = mariadbOrSkip('test/mariadb-consistency.test.ts', { sysbench: true });

const RUNS = [
  { seed: 1, config: CONFIGS.default, slowSeconds: 6, accounts: 50, clients: 2, contention: true },
  { seed: 2, config: CONFIGS.default, slowSeconds: 3, accounts: 20, clients: 3, contention: false },
  { seed: 4, config: CONFIGS.eager, slowSeconds: 6, accounts: 50, clients: 2, contention: true },
];

for (const run of RUNS) {
  test(`MariaDB under load (seed ${run.seed}, ${run.config.name}${run.contention ? ', disk contention' : ''}): the backup equals ` +
    'the reference at the cut, and the restored server recovers, checks and holds every state as a prefix at the cut', {
    skip, timeout: 400_000,
  }, async (t) => {
    const sc = scratch(t, `hb-maria-cons-${run.seed}-`);
    const r = await consistencyRun({ install: install!, dir: sc.dir, ...run, log: (l) => t.diagnostic(l) });
    for (const d of r.diagnostics) t.diagnostic(d);
    assert.deepEqual(r.problems, [], `seed ${run.seed}, ${run.config.name}: evidence kept in ${sc.dir}`);
    assert.ok(r.bytesMirrored > 0 && r.bytesCompared > 0, 'the run must mirror writes and compare the image');
    sc.passed();
  });
}
