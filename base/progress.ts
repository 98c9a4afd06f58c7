/**
 * Progress as a callback: libraries never print. A long operation takes `onProgress` (no-op by
 * default) and reports one line per step; the CLI decides how to show it (stderr lines, nothing
 * under --json or GRIDFORGE_QUIET=1).
 */

/** One line of progress, for people: what is happening now, with counts where there are any. */
export type Progress = (message: string) => void;

/** The default: report nothing. */
export const noProgress: Progress = () => {};
