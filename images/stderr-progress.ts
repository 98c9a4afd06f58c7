/**
 * Progress lines on stderr (silent under GRIDFORGE_QUIET=1), the same output as the CLI's
 * scripts/lib/output.ts `progress`, for the image code that still prints its own progress
 * (flatten/index.ts, sandbox/index.ts, sandbox/repo-sink.ts, layer/image-tree.ts) instead of taking
 * an `onProgress` callback (base/progress.ts); images/ may not import scripts/.
 */
export function progress(message: string): void {
  if (process.env.GRIDFORGE_QUIET === '1') return;
  process.stderr.write(`${message}\n`);
}
