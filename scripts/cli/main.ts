/**
 * gridforge CLI entry: builds the commander program from the command groups (scripts/cli/groups.ts).
 * Each group lives in its own file and only parses arguments and prints; the work happens in
 * images/, cvmfs-publish/, release/ and stacks/. Only the group named on the command line is loaded;
 * with none named (`--help`, `--version`, an unknown word) the groups are listed from their
 * summaries alone, so commander can show and suggest them without loading any capability.
 */
import { Command, CommanderError } from 'commander';
import { GROUPS, type Group, type GroupName } from './groups.ts';
import { GridforgeError } from '../../base/errors.ts';
import { exitCodeOf, formatError } from './errors-to-exit.ts';

/** The group the command line names (after the global --config option, or after `help`), if it is one. */
export function groupOf(argv: string[]): GroupName | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') i++;
    else if (a.startsWith('--config=')) continue;
    else if (a === 'help' && i + 1 < argv.length && Object.hasOwn(GROUPS, argv[i + 1])) return argv[i + 1] as GroupName;
    else return Object.hasOwn(GROUPS, a) ? (a as GroupName) : undefined;
  }
  return undefined;
}

/** A group as a name and summary only, for the top-level listing. */
function listed(name: GroupName): Group {
  return { register: (program) => void program.command(name).description(GROUPS[name].summary) };
}

export async function buildProgram(only?: GroupName): Promise<Command> {
  const groups = only ? [await GROUPS[only].load()] : (Object.keys(GROUPS) as GroupName[]).map(listed);
  const program = new Command('gridforge')
    .description('Build, flatten, publish (CernVM-FS) and deploy the containerised ALICE Grid workflow.')
    .version('0.1.0')
    .option('--config <file>', 'project config file', 'gridforge.yaml')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const group of groups) group.register(program);
  // Sub-commands inherit exitOverride so usage errors exit 2 instead of 1.
  const propagate = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(propagate);
  };
  propagate(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(groupOf(argv));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    // an option's own parser (options.ts wholeNumber, seconds, ...) refused its value while commander parsed
    if (err instanceof GridforgeError) {
      process.stderr.write(`${formatError(err)}\n`);
      return exitCodeOf(err);
    }
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
