// The command index: every command's yargs command string and one-line description, and where its
// module is. main.ts registers them all (--help lists them, a typo gets a suggestion) but loads a
// command's module only when the command line names it: start-up is paid on every call, and a
// warm `hotbackup verify` of a few GiB is over in a third of a second.
import type { CommandDef } from './command.js';

export interface CommandEntry {
  /** yargs command string, e.g. 'start <dest>'. */
  command: string;
  describe: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  load(): Promise<CommandDef<any>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const lazy = (importer: () => Promise<{ default: CommandDef<any> }>) => async () => (await importer()).default;

export const COMMANDS: CommandEntry[] = [
  { command: 'start <dest>', describe: 'Start a hot backup of the server\'s data into DEST',
    load: lazy(() => import('./start.js')) },
  { command: 'status', describe: 'Show the current or last backup of the server',
    load: lazy(() => import('./status.js')) },
  { command: 'throttle [rate]', describe: 'Change the copy rate of the running backup (e.g. 20MB/s, 512KiB/s, off)',
    load: lazy(() => import('./throttle.js')) },
  { command: 'cancel', describe: 'Stop the running backup and remove its partial destination',
    load: lazy(() => import('./cancel.js')) },
  { command: 'list', describe: 'List the backups started through this CLI (the catalog)',
    load: lazy(() => import('./list.js')) },
  { command: 'recover', describe: 'Undo what a killed hotbackup left half done, reporting each step',
    load: lazy(() => import('./recover.js')) },
  { command: 'restore <backup> <target>', describe: 'Restore a complete backup into a new data directory (optionally run crash recovery now)',
    load: lazy(() => import('./restore.js')) },
  { command: 'demo', describe: 'Back up a busy SQLite database under the shim, then verify the backup',
    load: lazy(() => import('./demo.js')) },
  { command: 'lib-path', describe: 'Print the absolute path of libhotbackup.so (for LD_PRELOAD)',
    load: lazy(() => import('./lib-path.js')) },
  { command: 'verify <dest>', describe: 'Check a backup against its manifest: every file, size, CRC32C (and InnoDB page with --pages)',
    load: lazy(() => import('./verify.js')) },
];

/** The word that invokes a command: 'start' for 'start <dest>'. */
export function commandName(c: CommandEntry): string {
  return c.command.split(' ')[0];
}
