// Runs the hotbackup CLI from the TypeScript sources in a process of its own (for tests that kill it).
import { main } from '../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
