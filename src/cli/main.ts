// The CLI runner: a fresh yargs instance per call, so commands run in-process in tests.
// main(argv) resolves to the exit code (see EXIT in command.ts); it never calls process.exit().
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
import { packageRoot } from '../lib-path.js';
import { recoverDeadJournals } from '../journal.js';
import { classifyError, type CommandDef, Context, EXIT, type Io, UserError } from './command.js';
import { commandName, COMMANDS } from './commands.js';

// yargs' CommonJS build is one bundled file: loading it costs ~15 ms where its ES module entry
// costs ~35 ms, and start-up is paid on every command (see commands.ts).
const yargs = createRequire(import.meta.url)('yargs/yargs') as (argv?: string[]) => Argv;

function version(): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** Runs one command line; resolves to its exit code. `io` defaults to this process's. */
export async function main(argv: string[], io: Partial<Io> = {}): Promise<number> {
  const ctx = new Context({
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
  }, argv);
  const json = argv.includes('--json');
  let exitCode: number = EXIT.OK;

  const fail = (e: unknown): number => {
    const { message, exitCode: code, code: name } = classifyError(e);
    ctx.log(`hotbackup: ${message}`);
    if (json) ctx.outJson({ error: { code: name, message, exit_code: code } });
    return code;
  };

  try {
    // Nothing in hotbackup starts with "-<digit>": such a word is a negative rate or size, refuse it
    // here with the units message instead of letting the parser read it as a cluster of flags.
    const dashdash = argv.indexOf('--');
    const negative = argv.slice(0, dashdash < 0 ? argv.length : dashdash).find((a) => /^-[\d.]/.test(a));
    if (negative !== undefined) {
      const { parseRate } = await import('../units.js');
      parseRate(negative); // throws UnitError with the accepted forms
    }

    const y: Argv = yargs()
      .scriptName('hotbackup')
      .usage('$0 <command> [options]\n\nHot, consistent backups of a running database server (see README.md).')
      .exitProcess(false)
      .strict()
      .recommendCommands()
      .showHelpOnFail(false)
      .demandCommand(1, 'name a command (hotbackup --help lists them)')
      .option('catalog', { type: 'string', global: true, requiresArg: true,
        describe: 'catalog database (default: $HOTBACKUP_CATALOG, else $XDG_STATE_HOME/hotbackup/catalog.db)' })
      .epilogue('Exit codes: 0 ok, 1 backup failed or cancelled (verify: did not verify, or incomplete), 2 usage error, 3 server unreachable, ' +
        '4 internal error, 5 conflict (a backup already runs / none runs).')
      .version(version())
      .help()
      .alias('h', 'help')
      .wrap(Math.min(110, (ctx.io.stdout.columns ?? 100)))
      .fail((msg, err) => {
        throw err ?? new UserError(`${msg} (hotbackup --help shows the usage)`, EXIT.USAGE);
      });

    // Only the modules of commands named on the line are loaded: yargs picks a command by the
    // word itself, so the one it runs is always among them.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const defs = new Map<string, CommandDef<any>>();
    await Promise.all(COMMANDS.filter((c) => argv.includes(commandName(c)))
      .map(async (c) => defs.set(commandName(c), await c.load())));
    for (const entry of COMMANDS) {
      const name = commandName(entry);
      y.command(entry.command, entry.describe,
        (b: Argv) => {
          const def = defs.get(name);
          if (!def) return b;
          const built = def.builder(b);
          for (const [cmd, what] of def.examples) built.example(cmd, what);
          return built;
        },
        async (args) => {
          exitCode = await runCommand(name, defs.get(name)!, args, ctx);
        });
    }
    await y.parseAsync(argv, {}, (err, _argv, output) => {
      if (err) throw err;
      if (output) ctx.out(output);
    });
    return exitCode;
  } catch (e) {
    return fail(e);
  } finally {
    ctx.close();
  }

  async function runCommand(name: string, def: CommandDef<unknown>, args: any, c: Context): Promise<number> {
    try {
      if (args.catalog) c.catalogPath = args.catalog;
      // verify reads a backup and nothing else: it neither needs nor touches the catalog.
      if (name !== 'recover' && name !== 'verify') await autoRecover(c, name === 'lib-path');
      return await def.run(args, c);
    } catch (e) {
      return fail(e);
    }
  }
}

/** Before any command: roll back journals left open by hotbackup processes that died. */
async function autoRecover(ctx: Context, optional: boolean): Promise<void> {
  let catalog;
  try {
    catalog = ctx.catalog();
  } catch (e) {
    if (optional) return;
    throw e;
  }
  const reports = await recoverDeadJournals(catalog, { log: (l) => ctx.log(l) });
  for (const r of reports) {
    ctx.log(`hotbackup: rolled back the unfinished \`hotbackup ${r.argv.join(' ')}\` of dead process ${r.pid} (journal #${r.journal}): ${r.state}`);
    for (const s of r.steps) ctx.log(`  undo ${s.kind}: ${s.result}`);
  }
}
