/**
 * Progress as a callback: libraries never print. A long operation takes `onProgress` (no-op by
 * default) and reports what it is doing; the CLI decides how to show it (a TTY line, plain
 * stderr lines, nothing under --json or GRIDFORGE_QUIET=1).
 */

export interface ProgressEvent {
  /** What is happening, one line, for people. */
  message: string;
  /** Work done so far and in all, when countable (bytes, files, layers). */
  done?: number;
  total?: number;
  /** Unit of done/total: 'bytes', 'files', 'layers', ... */
  unit?: string;
  /** A warning rather than a step. */
  warning?: boolean;
}

export type Progress = (event: ProgressEvent) => void;

/** The default: report nothing. */
export const noProgress: Progress = () => {};

/** A reporter that takes plain message strings, for code that reports lines only. */
export function lineReporter(onProgress: Progress | undefined): (message: string) => void {
  const p = onProgress ?? noProgress;
  return (message) => p({ message });
}
