/**
 * How the CLI shows a failure: the one paragraph users see (message, where, fix, detail lines)
 * and the exit code (0 ok, 1 failed, 2 bad usage or bad input). Libraries throw base/errors.ts
 * classes, which carry no exit code; this is the one place that maps them.
 */
import { GridforgeError, UsageError } from '../../base/errors.ts';

/** Render an error as the one paragraph users see (plus optional detail lines). */
export function formatError(err: unknown): string {
  if (err instanceof GridforgeError) {
    const head = err.where ? `${err.where}: ${err.message}` : err.message;
    const parts = [`error: ${head}`];
    if (err.hint) parts[0] += ` ${err.hint.startsWith('Fix') || err.hint.startsWith('fix') ? '' : 'Fix: '}${err.hint}`;
    if (err.detail) parts.push(err.detail.trimEnd());
    return parts.join('\n');
  }
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}

/** The exit code of a failure: 2 for bad usage or bad input, 1 for a failed operation. */
export function exitCodeOf(err: unknown): number {
  return err instanceof UsageError ? 2 : 1;
}
