// hotbackup status [--json] [--watch]: the current or last backup of the server.
import { type BackupStatus, request, TERMINAL_STATES } from '../client.js';
import { Context, defineCommand, EXIT, jsonOption, socketOption } from './command.js';
import { formatStatus, progressLine, serverSocket } from './server.js';

/** Copies a status into the catalog entry it belongs to, if the CLI started that backup. */
export function recordStatus(ctx: Context, socket: string, s: BackupStatus): void {
  try {
    const entry = ctx.catalog().findForStatus(socket, s);
    if (entry && entry.state !== 'rolled_back') ctx.catalog().updateFromStatus(entry.id, s);
  } catch { /* the catalog is a record, not a precondition */ }
}

export default defineCommand({
  examples: [
    ['hotbackup status', 'state, progress, rate, ETA, errors'],
    ['hotbackup status --json', 'the same as one JSON object (fields in docs/protocol.md)'],
    ['hotbackup status --watch --json', 'one JSON object a line until the backup ends'],
  ],
  server: true,
  builder: (y) =>
    jsonOption(socketOption(y))
      .option('watch', { type: 'boolean', default: false, describe: 'repeat until the backup ends (NDJSON with --json)' })
      .option('interval', { type: 'number', default: 1000, describe: 'milliseconds between two --watch polls', hidden: true }),
  async run(args, ctx) {
    const socket = serverSocket(ctx, args.socket);
    for (;;) {
      const s = await request(socket, { op: 'status' });
      recordStatus(ctx, socket, s);
      if (!args.watch) {
        if (args.json) ctx.outJson(s);
        else ctx.out(formatStatus(s, socket));
        return EXIT.OK;
      }
      if (args.json) ctx.io.stdout.write(JSON.stringify(s) + '\n');
      else ctx.out(`${new Date().toISOString()} ${s.state === 'idle' ? 'idle' : progressLine(s)}`);
      if (TERMINAL_STATES.has(s.state)) return EXIT.OK;
      await new Promise((r) => setTimeout(r, Math.max(50, args.interval)));
    }
  },
});
