import type { Stats } from 'node:fs';

export declare const FILE: 1;
export declare const DIR: 2;
export declare const SYMLINK: 3;
export declare const SPECIAL: 4;
export declare const END: 5;
export declare const FIELDS: number;
export declare class ScanError extends Error {
  where: string;
  hint: string;
  constructor(message: string, where: string, hint: string);
}
/** Records as one message: `count` records, FIELDS numbers each; names and targets '\0'-joined. */
export interface ListingChunk {
  count: number;
  nums: Float64Array;
  names: string;
  targets: string;
}
export declare class Listing {
  count: number;
  constructor(capacity?: number);
  add(kind: number, st?: Stats, name?: string, target?: string): void;
  take(): ListingChunk;
}
export declare const CHANGED_HINT: string;
/** A directory's identity as its parent listed it; `pdev`/`pino`: the parent's (checked against its `..`). */
export interface DirIdentity {
  dev: number;
  ino: number;
  pdev?: number;
  pino?: number;
}
export declare function listDirectory(dir: string, deep: boolean, maxFileSize: number, listing: Listing, chunk?: number, full?: (l: Listing) => void, expect?: DirIdentity): void;
