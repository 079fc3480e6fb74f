// hotbackup recover: rolls back the unfinished journals of CLI processes that died, step by step.
// (Every other command does this silently-but-logged before it runs; recover does it explicitly,
// retries rollbacks that failed before, and reports each step.)
import { recoverDeadJournals } from '../journal.js';
import { defineCommand, EXIT, jsonOption } from './command.js';

export default defineCommand({
  examples: [['hotbackup recover', 'roll back unfinished journals of dead hotbackup processes']],
  builder: (y) => jsonOption(y),
  async run(args, ctx) {
    const reports = await recoverDeadJournals(ctx.catalog(), { retryFailed: true });
    if (args.json) {
      ctx.outJson({ journals: reports });
    } else if (!reports.length) {
      ctx.out('nothing to recover: no unfinished journal of a dead hotbackup process');
    } else {
      for (const r of reports) {
        ctx.out(`journal #${r.journal} (hotbackup ${r.argv.join(' ')}, pid ${r.pid}): ${r.state}`);
        for (const s of r.steps) ctx.out(`  step ${s.seq} ${s.kind} (${s.before}): ${s.after}: ${s.result}`);
      }
    }
    return reports.some((r) => r.state === 'rollback_failed') ? EXIT.INTERNAL : EXIT.OK;
  },
});
