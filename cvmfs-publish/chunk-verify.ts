/**
 * `repo verify` checks of a chunked file's chunk list (the `chunks` table rows of one catalog row,
 * flag 64): what the cvmfs client needs to read it (cvmfs/file_chunk.h, catalog_sql.cc
 * SqlChunksListing: chunks in offset order, looked up by offset) plus what cvmfs_server writes
 * (task_chunk.cc: two or more chunks, each at most the maximum chunk size, all but the last at
 * least the minimum). The chunk objects themselves are checked by the caller (`onChunk`).
 */
import type { ChunkRow } from './catalog.ts';
import type { ChunkParams } from './chunk-params.ts';

export function checkChunkList(chunks: ChunkRow[] | undefined, fileSize: number, at: string, add: (w: string, p: string) => void, onChunk: (hash: string, size: number) => void, bounds?: ChunkParams): void {
  if (!chunks || chunks.length === 0) {
    add(at, 'chunked file (flag 64) without rows in the chunks table');
    return;
  }
  let next = 0;
  chunks.forEach((c, i) => {
    if (c.offset !== next) add(at, `chunk ${i} starts at offset ${c.offset}, expected ${next} (chunks must be contiguous from 0)`);
    if (c.size <= 0) add(at, `chunk ${i} at offset ${c.offset} has size ${c.size}`);
    else if (bounds && (c.size > bounds.max || (i < chunks.length - 1 && c.size < bounds.min))) add(at, `chunk ${i} at offset ${c.offset} is ${c.size} bytes, outside the repository's chunk sizes (${bounds.min}..${bounds.max})`);
    if (!c.hash || c.hash.length !== 20) add(at, `chunk ${i} at offset ${c.offset} has no 20-byte content hash`);
    else if (c.size > 0) onChunk(c.hash.toString('hex'), c.size);
    next = c.offset + c.size;
  });
  if (next !== fileSize) add(at, `chunks add up to ${next} bytes, the file size is ${fileSize}`);
}
