// hotbackup cancel: stops the running backup; the shim removes the partial destination.
import { existsSync } from 'node:fs';
import { request, TERMINAL_STATES } from '../client.js';
import { defineCommand, EXIT, jsonOption, socketOption } from './command.js';
import { serverSocket } from './server.js';
import { recordStatus } from './status.js';

export default defineCommand({
  command: 'cancel',
  describe: 'Stop the running backup and remove its partial destination',
  examples: [['hotbackup cancel', 'stop the backup; the catalog records it as cancelled']],
  server: true,
  builder: (y) => jsonOption(socketOption(y)),
  async run(args, ctx) {
    const socket = serverSocket(ctx, args.socket);
    let s = await request(socket, { op: 'cancel' });
    // The reply may come before the copier has stopped: wait for the end state.
    for (let i = 0; !TERMINAL_STATES.has(s.state) && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await request(socket, { op: 'status' });
    }
    recordStatus(ctx, socket, s);
    const left = s.dest && existsSync(s.dest);
    if (args.json) {
      ctx.outJson({ status: s, dest_removed: !left });
    } else {
      ctx.out(`cancelled the backup to ${s.dest} (state ${s.state})`);
      if (left) ctx.log(`warning: ${s.dest} still exists`);
    }
    return EXIT.OK;
  },
});
