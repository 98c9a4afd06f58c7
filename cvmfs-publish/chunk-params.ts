/**
 * File chunking settings of a repository (`.gridforge/config.json` key `chunking`, `repo init
 * --min-chunk-size/--avg-chunk-size/--max-chunk-size`) and the chunk list of a chunked file. The
 * defaults and the rules are cvmfs_server's (cvmfs/server/cvmfs_server_coda.sh; the asserts of
 * cvmfs/ingestion/chunk_detector.cc Xor32Detector).
 */
import { UsageError } from '../base/errors.ts';
import { DEFAULT_CHUNKING } from './chunk-detector.mjs';

export interface ChunkParams {
  min: number;
  avg: number;
  max: number;
}

/** One chunk of a chunked file: `size` bytes at `offset`, stored as object `hash` + 'P'. */
export interface ChunkRef {
  offset: number;
  size: number;
  hash: string;
  /** chunk cache key of its plain bytes (set for chunks this process stored) */
  digest: string;
}

export const DEFAULT_CHUNK_PARAMS: ChunkParams = { ...DEFAULT_CHUNKING };

/** Chunk sizes cvmfs accepts: 32 <= min < avg < max (integers), else UsageError naming `where`. */
export function checkChunkParams(p: ChunkParams, where: string): ChunkParams {
  const ok = [p.min, p.avg, p.max].every((n) => Number.isSafeInteger(n) && n > 0) && p.min >= 32 && p.min < p.avg && p.avg < p.max;
  if (!ok) {
    throw new UsageError(`chunk sizes min ${p.min}, avg ${p.avg}, max ${p.max} are not usable`, {
      where,
      hint: 'give whole byte counts with 32 <= min < avg < max (cvmfs_server defaults: 4194304, 8388608, 16777216)',
    });
  }
  return { min: p.min, avg: p.avg, max: p.max };
}
