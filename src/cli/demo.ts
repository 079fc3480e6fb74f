// hotbackup demo: placeholder until the bank workload lands.
import { defineCommand, EXIT, UserError } from './command.js';

export default defineCommand({
  command: 'demo',
  describe: 'Back up a busy SQLite database under the shim, then verify the backup',
  examples: [['hotbackup demo', 'the whole story in one command']],
  builder: (y) => y,
  async run() {
    throw new UserError('demo is not implemented yet', EXIT.INTERNAL, 'internal');
  },
});
