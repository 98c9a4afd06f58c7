/**
 * The two kinds of failure every library reports.
 * - UsageError: bad usage or bad input (a file, key or archive entry at fault).
 * - GridforgeError: an operation failed (engine, network, host).
 * Both carry `where` (what is at fault) and a `hint` that says how to fix it. They carry no exit
 * code: the CLI maps them (scripts/cli/errors-to-exit.ts: UsageError 2, anything else 1).
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
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details);
    this.name = 'UsageError';
  }
}
