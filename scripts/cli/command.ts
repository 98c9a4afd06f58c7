/**
 * Glue between commander and gridforge's conventions: every action runs through
 * `action()`, which turns thrown errors into the one-paragraph message and the
 * exit code (0 ok, 1 failed, 2 bad usage or input).
 */
import type { Command } from 'commander';
import { exitCodeOf, formatError } from './errors-to-exit.ts';

export type Handler = (...args: any[]) => Promise<number | void> | number | void;

/** Wrap a command handler: sets process.exitCode from its result or its error. */
export function action(handler: Handler): (...args: any[]) => Promise<void> {
  return async (...args: any[]) => {
    try {
      const code = await handler(...args);
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (err) {
      process.stderr.write(`${formatError(err)}\n`);
      if (process.env.GRIDFORGE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = exitCodeOf(err);
    }
  };
}

/** Options every command shares. */
export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print one JSON document on stdout instead of human output');
}

/** A module that adds its commands to the program. */
export interface CommandGroup {
  register(program: Command): void;
}
