/**
 * gridforge CLI entry: builds the commander program from the command groups.
 * Each group lives in its own file and only parses arguments and prints; the
 * work happens in images/, cvmfs-publish/ and stacks/. Only the group named on the
 * command line is loaded (loading all of them took ~0.5 s); help, version and
 * anything unknown load every group, so commander lists and suggests them all.
 */
import { Command, CommanderError } from 'commander';

interface Group {
  register(program: Command): void;
}

const GROUPS: Record<string, () => Promise<Group>> = {
  image: () => import('./image.ts'),
  repo: () => import('./repo.ts'),
  release: () => import('./release.ts'),
  render: () => import('./render.ts'),
  site: () => import('./site.ts'),
  rollout: () => import('./rollout.ts'),
  fleet: () => import('./fleet.ts'),
};

/** The group the command line names (after the global --config option), if it is one. */
export function groupOf(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') i++;
    else if (a.startsWith('--config=')) continue;
    else return Object.hasOwn(GROUPS, a) ? a : undefined;
  }
  return undefined;
}

export async function buildProgram(only?: string): Promise<Command> {
  const groups = await Promise.all((only ? [only] : Object.keys(GROUPS)).map((g) => GROUPS[g]()));
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
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
