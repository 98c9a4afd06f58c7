/**
 * Parallel compression stage: a worker_threads pool (one worker per core) that reads, deflates,
 * hashes and stores files. Small files travel in batches so thousands of files per second are
 * not bottlenecked by message passing. A file of a scanned tree carries the identity the scan saw
 * (its directory's and its own device and inode): the worker refuses a file swapped since then
 * with a UsageError naming it (compress-worker.mjs).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { UsageError } from '../base/errors.ts';
import { ChunkCache } from './chunk-cache.ts';
import type { ChunkParams, ChunkRef } from './chunk-params.ts';

export interface FileJobResult {
  hash: string;
  size: number;
  /** The object did not exist before this job stored it. */
  created: boolean;
  /** set for a chunked file (then `hash` is ''): its chunks, each with `created` as above */
  chunks?: (ChunkRef & { created: boolean })[];
  /** id of that chunk list, what the scan cache records for the file (chunk-cache.ts) */
  listId?: string;
}

/** What the scan saw of a file: its directory's device and inode, and its own. */
export interface ScannedFile {
  dirDev: number;
  dirIno: number;
  dev: number;
  ino: number;
}

/** A worker's answer for a job that failed: `where` set for bad input (a file changed while being published). */
interface JobError {
  error: string;
  where?: string;
  hint?: string;
}

interface Pending {
  path: string;
  size: number;
  /** set: the content is `size` bytes of `path` from here (a file inside a layer blob) */
  offset?: number;
  /** set: a file of a scanned tree, which must still be the one scanned */
  scanned?: ScannedFile;
  /** set: the content itself (putFile of a Buffer above the minimum chunk size) */
  content?: Buffer;
  resolve: (r: FileJobResult) => void;
  reject: (e: Error) => void;
}

const BATCH_FILES = 64;
const BATCH_BYTES = 4 << 20;

/** Two workers per core (file I/O of one overlaps compression of the other); GRIDFORGE_COMPRESS_WORKERS overrides. */
export function defaultWorkers(): number {
  const env = Number(process.env.GRIDFORGE_COMPRESS_WORKERS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(2, Math.min(2 * (os.availableParallelism?.() ?? os.cpus().length), 8));
}

/** A job as the worker reads it (flat numbers: thousands go in each message); `prev`: the file's previous chunk list. */
function jobMessage(p: Pending, prev: ChunkRef[] | undefined): object {
  const s = p.scanned;
  if (p.content) return { path: p.path, size: p.size, content: p.content };
  return s ? { path: p.path, size: p.size, dd: s.dirDev, di: s.dirIno, dev: s.dev, ino: s.ino, prev } : { path: p.path, size: p.size, offset: p.offset };
}

export class CompressPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: Pending[] = [];
  private head = 0;
  private scheduled = false;
  private inflight = new Map<number, Pending[]>();
  private nextId = 1;
  private closed = false;

  /**
   * Workers start one at a time as work backs up (a republish with a few changed files needs one,
   * a first publish gets all of them within its first batches): each costs ~15 ms of CPU to start.
   */
  constructor(private readonly repoDir: string, private readonly size = defaultWorkers(), private readonly chunking?: ChunkParams) {
    this.chunks = chunking ? ChunkCache.at(repoDir, chunking) : undefined;
  }

  /** digests of stored chunks and chunk lists of files (chunking on only) */
  private readonly chunks?: ChunkCache;

  /** The chunk list a scan cache entry names (a list id), if known. */
  chunkList(id: string): ChunkRef[] | undefined {
    return this.chunks?.list(id);
  }

  /** Write the chunk cache (after the objects it names are stored). */
  async saveChunkCache(): Promise<void> {
    await this.chunks?.save();
  }

  private settle(p: Pending, r: FileJobResult): void {
    if (r.chunks && this.chunks) r.listId = this.chunks.add(r.chunks, p.scanned ? p.path : undefined);
    p.resolve(r);
  }

  private spawn(): void {
    const w = new Worker(new URL('./compress-worker.mjs', import.meta.url), { workerData: { repoDir: this.repoDir, chunking: this.chunking, digests: this.chunks?.digestEntries(), chunkKey: this.chunks?.key.key }, execArgv: [] });
    w.on('message', (msg: { id: number; results: (FileJobResult | JobError)[] }) => {
      const batch = this.inflight.get(msg.id)!;
      this.inflight.delete(msg.id);
      msg.results.forEach((r, j) => {
        if ('error' in r) batch[j].reject(r.where !== undefined ? new UsageError(r.error, { where: r.where, hint: r.hint }) : new Error(r.error));
        else this.settle(batch[j], r);
      });
      this.idle.push(w);
      this.pump();
    });
    w.on('error', (err) => {
      for (const [, batch] of this.inflight) batch.forEach((p) => p.reject(err));
      this.inflight.clear();
    });
    this.workers.push(w);
    this.idle.push(w);
  }

  /**
   * Compress and store one file from disk (with `offset`: `size` bytes of it from there; with
   * `scanned`: a file of a scanned tree, refused unless it is still the file scanned).
   */
  storeFile(path: string, size: number, offset?: number, scanned?: ScannedFile, content?: Buffer): Promise<FileJobResult> {
    if (this.closed) return Promise.reject(new Error('compression pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ path, size, offset, scanned, content, resolve, reject });
      // Dispatch as soon as a batch is full; otherwise once on the next turn (lets the caller fill batches).
      if (this.queue.length - this.head >= BATCH_FILES) this.pump();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    if (this.closed) return; // a pump scheduled before close() must not start a worker that keeps the process alive
    // one more worker while none is idle and more than a batch waits (up to the pool size)
    if (this.idle.length === 0 && this.workers.length < this.size && (this.workers.length === 0 || this.queue.length - this.head > BATCH_FILES)) this.spawn();
    while (this.idle.length > 0 && this.head < this.queue.length) {
      const w = this.idle.pop()!;
      const batch: Pending[] = [];
      let bytes = 0;
      while (this.head < this.queue.length && batch.length < BATCH_FILES && (batch.length === 0 || bytes + this.queue[this.head].size <= BATCH_BYTES)) {
        const p = this.queue[this.head++];
        bytes += p.size;
        batch.push(p);
      }
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      const id = this.nextId++;
      this.inflight.set(id, batch);
      const prev = (p: Pending) => (p.scanned && this.chunking && p.size > this.chunking.min ? this.chunks?.previous(p.path) : undefined);
      w.postMessage({ id, jobs: batch.map((p) => jobMessage(p, prev(p))) });
    }
  }

  /** Jobs handed out or queued and not finished: closing now may cut a worker mid-write. */
  get busy(): boolean {
    return this.inflight.size > 0 || this.head < this.queue.length;
  }

  /** Reject the jobs not handed to a worker yet (the ones in flight finish). */
  cancelQueued(reason: Error): void {
    const queued = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const p of queued) p.reject(reason);
  }

  /** Store content held in memory (chunked when above the minimum chunk size). */
  storeContent(label: string, content: Buffer): Promise<FileJobResult> {
    return this.storeFile(label, content.length, undefined, undefined, content);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
