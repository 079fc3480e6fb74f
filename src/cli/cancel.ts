// hotbackup cancel: stops the running backup; the shim removes the partial destination.
import { existsSync } from 'node:fs';
import { request } from '../client.js';
import { defineCommand, EXIT, jsonOption, socketOption } from './command.js';
import { removeCreatedDest, serverSocket, waitSettled } from './server.js';
import { recordStatus } from './status.js';

export default defineCommand({
  examples: [['hotbackup cancel', 'stop the backup; the catalog records it as cancelled']],
  server: true,
  builder: (y) => jsonOption(socketOption(y)),
  async run(args, ctx) {
    const socket = serverSocket(ctx, args.socket);
    // The reply may come before the copier has stopped and emptied DEST: wait for that.
    const s = await waitSettled(socket, await request(socket, { op: 'cancel' }));
    recordStatus(ctx, socket, s);
    let entry;
    try {
      entry = ctx.catalog().findForStatus(socket, s);
    } catch { /* no catalog: nothing known about DEST */ }
    removeCreatedDest(entry);
    const left = s.dest != null && existsSync(s.dest);
    if (args.json) {
      ctx.outJson({ status: s, dest_removed: !left });
    } else {
      ctx.out(`cancelled the backup to ${s.dest} (state ${s.state})`);
      if (left) ctx.log(`note: ${s.dest} still exists (it existed before the backup; the shim emptied it)`);
    }
    return EXIT.OK;
  },
});
