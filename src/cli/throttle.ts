// hotbackup throttle RATE|off: changes the copy rate of the running backup, now.
import { request } from '../client.js';
import { formatRate, parseRate } from '../units.js';
import { defineCommand, EXIT, jsonOption, socketOption, UserError } from './command.js';
import { serverSocket } from './server.js';

export default defineCommand({
  examples: [
    ['hotbackup throttle 20MB/s', 'copy at most 20,000,000 bytes per second'],
    ['hotbackup throttle 512KiB/s', 'copy at most 524,288 bytes per second'],
    ['hotbackup throttle off', 'copy as fast as possible'],
  ],
  server: true,
  builder: (y) => jsonOption(socketOption(y.positional('rate', { type: 'string', describe: 'bytes per second, or off' }))),
  async run(args, ctx) {
    // `hotbackup throttle -- -5MB/s` puts the value after "--" into args._.
    const text = args.rate ?? (args._.length > 1 ? String(args._[1]) : undefined);
    if (text === undefined) throw new UserError('throttle needs a RATE (e.g. 20MB/s, 512KiB/s) or off');
    const rate = parseRate(text);
    const socket = serverSocket(ctx, args.socket);
    const status = await request(socket, { op: 'throttle', bytes_per_sec: rate });
    try {
      const entry = ctx.catalog().findForStatus(socket, status);
      if (entry) ctx.catalog().updateFromStatus(entry.id, status);
    } catch { /* the catalog is a record, not a precondition */ }
    if (args.json) {
      ctx.outJson({ throttle_bytes_per_sec: status.throttle_bytes_per_sec, human: formatRate(status.throttle_bytes_per_sec), status });
    } else {
      ctx.out(`throttle set to ${formatRate(status.throttle_bytes_per_sec)} for the backup to ${status.dest}`);
    }
    return EXIT.OK;
  },
});
