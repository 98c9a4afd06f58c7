/**
 * Chunk cache, `<repo>/.gridforge/chunk-cache.json` (gridforge state, not part of the format): what
 * lets a republish of a large file that changed a little skip the chunks that did not change.
 * - digests: keyed digest of a chunk's plain bytes (with the compression mode; chunk-store.mjs
 *   digestOf, under the key of chunk-key.ts) -> its P object (the worker checks the object still
 *   exists before reusing it);
 * - lists: chunk list id -> the chunk list of a file. The scan cache (scan-cache.ts) records a
 *   list id where it records a content hash for an unchanged file: ids start with LIST_ID_PREFIX,
 *   which no real object name does in practice (checked: an id not found here is a cache miss);
 * - paths: source file -> its last list id, the previous chunk list a changed file is compared with.
 * Damaged or missing: empty (costs recompression only). Lists made with other chunk sizes are dropped,
 * and everything made under another chunk key. Written with mode 0600: the digests are keyed tags,
 * which stay private like the key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicAsync } from '../base/safe-fs.ts';
import type { ChunkParams, ChunkRef } from './chunk-params.ts';
import { chunkKeyAt, type ChunkKey } from './chunk-key.ts';

/** 8 zero hex digits: a SHA-1 object name starts so with probability 2^-32. */
export const LIST_ID_PREFIX = '00000000';
/** 2: keyed digests (version 1 held SHA-256 digests). */
const VERSION = 2;
/** Bounds on what is kept (least recently used go first). */
const MAX_DIGESTS = 500_000;
const MAX_LISTS = 50_000;

interface CacheFile {
  version: number;
  /** ChunkKey.id of the key the digests were made with */
  key: string;
  params: ChunkParams;
  digests: [string, string][];
  lists: [string, [number, number, string, string][]][];
  paths: [string, string][];
}

export function isListId(hash: string): boolean {
  return hash.startsWith(LIST_ID_PREFIX);
}

/** The id of a chunk list: LIST_ID_PREFIX + 32 hex digits of the SHA-1 of its offsets, sizes and objects. */
export function listIdOf(chunks: ChunkRef[]): string {
  const h = crypto.createHash('sha1');
  for (const c of chunks) h.update(`${c.offset} ${c.size} ${c.hash}\n`);
  return LIST_ID_PREFIX + h.digest('hex').slice(8);
}

export class ChunkCache {
  private digests = new Map<string, string>();
  private lists = new Map<string, ChunkRef[]>();
  private paths = new Map<string, string>();
  private changed = false;

  constructor(private readonly file: string, private readonly params: ChunkParams, readonly key: ChunkKey) {
    try {
      const f = JSON.parse(fs.readFileSync(file, 'utf8')) as CacheFile;
      if (f.version !== VERSION || f.key !== key.id) return;
      this.digests = new Map(f.digests);
      const same = f.params.min === params.min && f.params.avg === params.avg && f.params.max === params.max;
      if (!same) return;
      this.lists = new Map(f.lists.map(([id, l]) => [id, l.map(([offset, size, hash, digest]) => ({ offset, size, hash, digest }))]));
      this.paths = new Map(f.paths);
    } catch {
      // missing or damaged: recompression only
    }
  }

  static at(repoDir: string, params: ChunkParams): ChunkCache {
    return new ChunkCache(path.join(repoDir, '.gridforge', 'chunk-cache.json'), params, chunkKeyAt(repoDir));
  }

  digestEntries(): [string, string][] {
    return [...this.digests];
  }

  /** The chunk list a list id names (a scan cache hit), marked as recently used. */
  list(id: string): ChunkRef[] | undefined {
    const l = this.lists.get(id);
    if (l) {
      this.lists.delete(id);
      this.lists.set(id, l);
    }
    return l;
  }

  /** The last chunk list stored for a source file (compared with its new content). */
  previous(sourcePath: string): ChunkRef[] | undefined {
    const id = this.paths.get(sourcePath);
    return id === undefined ? undefined : this.lists.get(id);
  }

  /** Record a file's new chunk list (and the digests of its chunks); returns its id. */
  add(chunks: ChunkRef[], sourcePath?: string): string {
    const id = listIdOf(chunks);
    const kept = chunks.map(({ offset, size, hash, digest }) => ({ offset, size, hash, digest }));
    this.lists.delete(id);
    this.lists.set(id, kept);
    for (const c of chunks) {
      this.digests.delete(c.digest);
      this.digests.set(c.digest, c.hash);
    }
    if (sourcePath !== undefined) {
      this.paths.delete(sourcePath);
      this.paths.set(sourcePath, id);
    }
    this.changed = true;
    return id;
  }

  /** Write the cache (atomically) if it changed; the oldest entries beyond the bounds are dropped. */
  async save(): Promise<void> {
    if (!this.changed) return;
    const newest = <K, V>(m: Map<K, V>, n: number) => [...m].slice(Math.max(0, m.size - n));
    const lists = newest(this.lists, MAX_LISTS);
    const ids = new Set(lists.map(([id]) => id));
    const f: CacheFile = {
      version: VERSION,
      key: this.key.id,
      params: this.params,
      digests: newest(this.digests, MAX_DIGESTS),
      lists: lists.map(([id, l]) => [id, l.map((c) => [c.offset, c.size, c.hash, c.digest])]),
      paths: [...this.paths].filter(([, id]) => ids.has(id)),
    };
    await writeFileAtomicAsync(this.file, JSON.stringify(f), { mode: 0o600 });
    this.changed = false;
  }
}
