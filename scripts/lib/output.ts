/**
 * Output conventions shared by every command:
 * - results go to stdout (human text, or one JSON document with --json);
 * - progress and warnings go to stderr, so stdout stays parseable;
 * - progress lines are suppressed with GRIDFORGE_QUIET=1.
 */
export interface OutputOptions {
  json?: boolean;
}

export function progress(message: string): void {
  if (process.env.GRIDFORGE_QUIET === '1') return;
  process.stderr.write(`${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** The one table layout (base/text-table.ts). */
export { formatTable } from '../../base/text-table.ts';
