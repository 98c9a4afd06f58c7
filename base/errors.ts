/**
 * The two kinds of failure every command reports.
 * - UsageError: bad usage or bad input (a file, key or archive entry at fault) -> exit 2.
 * - GridforgeError: an operation failed (engine, network, host) -> exit 1.
 * Both carry a `hint` that says how to fix it; the CLI prints message + hint as one paragraph.
 */
export interface ErrorDetails {
  /** How to fix it, in one or two sentences. */
  hint?: string;
  /** The file, key, archive entry or host at fault. */
  where?: string;
  cause?: unknown;
  /** Extra lines (a log tail, a failing step) printed after the message. */
  detail?: string;
}

export class GridforgeError extends Error {
  readonly exitCode: number = 1;
  readonly hint?: string;
  readonly where?: string;
  readonly detail?: string;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GridforgeError';
    this.hint = details.hint;
    this.where = details.where;
    this.detail = details.detail;
  }
}

export class UsageError extends GridforgeError {
  override readonly exitCode: number = 2;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details);
    this.name = 'UsageError';
  }
}

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

export function exitCodeOf(err: unknown): number {
  return err instanceof GridforgeError ? err.exitCode : 1;
}
