// Types of open-checked.mjs for the TypeScript that imports it (base/safe-fs.ts).
import type { Stats } from 'node:fs';
export type OpenCheckReason = 'symlink' | 'not-regular' | 'replaced' | 'size';
export declare class OpenCheckError extends Error {
  readonly reason: OpenCheckReason;
  /** What was found (absent for 'symlink'). */
  readonly stat?: Stats;
  constructor(reason: OpenCheckReason, message: string, stat?: Stats);
}
export declare function openRegularChecked(file: string, expect?: { dev: number; ino: number; size: number }): { fd: number; stat: Stats };
