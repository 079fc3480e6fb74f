// hotbackup lib-path: prints the absolute path of libhotbackup.so, for LD_PRELOAD=$(hotbackup lib-path).
import { requireShimPath } from '../lib-path.js';
import { defineCommand, EXIT, UserError } from './command.js';

export default defineCommand({
  examples: [['LD_PRELOAD=$(hotbackup lib-path) HOTBACKUP_SOCKET=/run/hb.sock mariadbd', 'run a server under the shim']],
  builder: (y) => y,
  async run(_args, ctx) {
    let path: string;
    try {
      path = requireShimPath();
    } catch (e) {
      throw new UserError((e as Error).message, EXIT.INTERNAL, 'not_built');
    }
    ctx.out(path);
    return EXIT.OK;
  },
});
