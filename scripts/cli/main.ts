/**
 * gridforge CLI entry: builds the commander program from the command groups.
 * Each group lives in its own file and only parses arguments and prints; the
 * work happens in images/, cvmfs-publish/ and stacks/.
 */
import { Command, CommanderError } from 'commander';
import * as image from './image.ts';
import * as repo from './repo.ts';
import * as release from './release.ts';
import * as render from './render.ts';
import * as site from './site.ts';
import * as rollout from './rollout.ts';
import * as fleet from './fleet.ts';

export function buildProgram(): Command {
  const program = new Command('gridforge')
    .description('Build, flatten, publish (CernVM-FS) and deploy the containerised ALICE Grid workflow.')
    .version('0.1.0')
    .option('--config <file>', 'project config file', 'gridforge.yaml')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const group of [image, repo, release, render, site, rollout, fleet]) group.register(program);
  // Sub-commands inherit exitOverride so usage errors exit 2 instead of 1.
  const propagate = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(propagate);
  };
  propagate(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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
