/**
 * Scan stage of putTree: lists a source tree and assembles its entry tree, in the source's order,
 * handing each regular file to `onFile` as it arrives (the transaction looks it up in the scan
 * cache or starts its compression). The top directories are listed here, breadth first, until
 * there are enough subtrees to share; scan worker threads then list whole subtrees
 * (`source-scan-worker.mjs`, one shared counter hands out the next one), because lstat is most of
 * a rescan's time and a republish leaves the other cores idle. Checks and their messages are in
 * `source-listing.mjs`; the first bad entry stops every worker.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { newDir, type Entry } from './entry.ts';
import { DIR, END, FIELDS, FILE, Listing, ScanError, SYMLINK, listDirectory, type DirIdentity, type ListingChunk } from './source-listing.mjs';

export interface ScanCounts {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/**
 * A regular file found: its entry (hash to fill), the source directory holding it (its path is
 * `${dir.path}/${e.name}`, built only when the file must be read; its device and inode, so the
 * reader opens the file through the directory that was listed) and its identity for the scan cache.
 */
export type OnFile = (e: Entry, dir: SourceDir, dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number) => void;

/** A source directory: its path and identity (see DirIdentity in source-listing.d.mts). */
export type SourceDir = DirIdentity & { path: string };

/** Subtrees to share before the workers start, and entries this thread lists while finding them. */
const TARGET_UNITS = 64;
export const MAIN_BUDGET = 1024;

/**
 * Scan worker threads beside this one (which lists subtrees too, between assembling what the
 * workers send): one per core but this one's, at least 1, at most 3; GRIDFORGE_SCAN_THREADS
 * overrides (0: list on this thread only).
 */
export function scanThreads(): number {
  const env = process.env.GRIDFORGE_SCAN_THREADS;
  if (env !== undefined && /^\d+$/.test(env)) return Number(env);
  return Math.max(1, Math.min((os.availableParallelism?.() ?? os.cpus().length) - 1, 3));
}

interface Frame {
  dir: Entry;
  path: string;
  /** the source directory as its parent listed it (and the parent's identity): listDirectory checks it */
  id: SourceDir;
  /** hard link groups of this directory by device:inode */
  inodes?: Map<string, number>;
}

function usageError(e: { message: string; where?: string; hint?: string }): GridforgeError {
  return e.where !== undefined ? new UsageError(e.message, { where: e.where, hint: e.hint }) : new GridforgeError(`source scan failed: ${e.message}`);
}

/** A directory is complete: one holding a `.cvmfscatalog` marker becomes a nested catalog. */
function finishDir(d: Entry): void {
  if (d.children!.has('.cvmfscatalog')) d.nested = true;
}

class Assembler {
  readonly counts: ScanCounts = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };

  constructor(private readonly onFile: OnFile) {}

  /**
   * Add a chunk's records below the open frames: with `subdirs`, a shallow listing (each DIR record
   * becomes an empty directory, collected there); without, a deep one (DIR opens a frame, END closes it).
   */
  apply(chunk: ListingChunk, frames: Frame[], subdirs?: Frame[]): void {
    const names = chunk.names.split('\0');
    const targets = chunk.targets.split('\0');
    const n = chunk.nums;
    let ni = 0;
    let ti = 0;
    const counts = this.counts;
    for (let r = 0; r < chunk.count; r++) {
      const o = r * FIELDS;
      const kind = n[o];
      const frame = frames[frames.length - 1];
      if (kind === END) {
        finishDir(frame.dir);
        frames.pop();
        continue;
      }
      const name = names[ni++];
      const mode = n[o + 1];
      const uid = n[o + 2];
      const gid = n[o + 3];
      const mtime = Math.floor(n[o + 4] / 1000);
      const children = frame.dir.children!;
      if (kind === FILE) {
        const size = n[o + 6];
        // fields spelled out (no spread of a meta object): this runs once per file of the tree
        const e: Entry = { name, type: 'file', mode, uid, gid, mtime, size, hash: undefined };
        if (n[o + 9] > 1) {
          frame.inodes ??= new Map();
          const ik = `${n[o + 7]}:${n[o + 8]}`;
          let g = frame.inodes.get(ik);
          if (g === undefined) frame.inodes.set(ik, (g = frame.inodes.size + 1));
          e.hlGroup = g;
        }
        this.onFile(e, frame.id, n[o + 7], n[o + 8], size, n[o + 4], n[o + 5]);
        counts.files++;
        counts.bytes += size;
        children.set(name, e);
      } else if (kind === DIR) {
        const d = newDir(name, { mode, uid, gid, mtime });
        counts.dirs++;
        children.set(name, d);
        const path = `${frame.path}/${name}`;
        const f = { dir: d, path, id: { path, dev: n[o + 7], ino: n[o + 8], pdev: frame.id.dev, pino: frame.id.ino } };
        if (subdirs) subdirs.push(f);
        else frames.push(f);
      } else if (kind === SYMLINK) {
        const target = targets[ti++];
        children.set(name, { name, type: 'symlink', mode, uid, gid, mtime, size: Buffer.byteLength(target), target });
        counts.symlinks++;
      } else {
        children.set(name, { name, type: 'special', mode, uid, gid, mtime, size: 0 });
      }
    }
  }
}

/** List the source tree at `src` (device and inode `srcId`, as the caller lstat'ed it) into the (empty) directory entry `top`. */
export async function scanSource(src: string, srcId: DirIdentity, top: Entry, maxFileSize: number, onFile: OnFile): Promise<ScanCounts> {
  const threads = scanThreads();
  const asm = new Assembler(onFile);
  // the workers start now and boot while the top of the tree is listed here
  const workers = threads > 0 ? new ScanWorkers(threads, maxFileSize, asm) : undefined;
  try {
    // 1. breadth first on this thread, until enough subtrees wait (or all of a small tree is listed)
    const frontier: Frame[] = [{ dir: top, path: src, id: { path: src, dev: srcId.dev, ino: srcId.ino } }];
    const listing = new Listing();
    let head = 0;
    let listed = 0;
    let sinceYield = 0;
    while (head < frontier.length && (!workers || (frontier.length - head < TARGET_UNITS && listed < MAIN_BUDGET))) {
      const f = frontier[head++];
      try {
        listDirectory(f.path, false, maxFileSize, listing, Infinity, undefined, f.id);
      } catch (err) {
        throw err instanceof ScanError ? usageError(err) : err;
      }
      const chunk = listing.take();
      listed += chunk.count;
      asm.apply(chunk, [f], frontier);
      finishDir(f.dir);
      // let the compression pool hand out batches while a large tree is listed here
      if ((sinceYield += chunk.count) >= 256) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    // 2. this thread and the workers list the remaining subtrees whole
    if (workers && head < frontier.length) await workers.run(frontier.slice(head));
    return asm.counts;
  } finally {
    workers?.stop();
  }
}

/** Scan worker threads sharing a list of subtrees with this thread; their chunks are assembled here as they arrive. */
class ScanWorkers {
  /** index of the next subtree to list, shared with the workers */
  private readonly next = new Int32Array(new SharedArrayBuffer(4));
  private readonly workers: Worker[] = [];
  private running: number;
  private units: Frame[] = [];
  private stacks: Frame[][] = [];
  private settle?: { resolve: () => void; reject: (err: unknown) => void };
  private failure?: unknown;

  constructor(threads: number, private readonly maxFileSize: number, private readonly asm: Assembler) {
    this.running = threads;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(new URL('./source-scan-worker.mjs', import.meta.url), { workerData: { next: this.next.buffer, maxFileSize }, execArgv: [] });
      this.workers.push(w);
      let finished = false;
      w.on('message', (m: (ListingChunk & { unit: number; last: boolean }) | { done: true } | { error: { message: string; where?: string; hint?: string } }) => {
        if (this.failure !== undefined) return;
        if ('error' in m) return this.fail(usageError(m.error));
        if ('done' in m) {
          finished = true;
          if (--this.running === 0) this.settle?.resolve();
          return;
        }
        try {
          this.asm.apply(m, this.stacks[m.unit]);
          if (m.last) finishDir(this.units[m.unit].dir);
        } catch (err) {
          this.fail(err);
        }
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (!finished) this.fail(new GridforgeError(`source scan worker exited with code ${code}`));
      });
    }
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    Atomics.store(this.next, 0, 2 ** 30); // no worker takes another subtree
    this.settle?.reject(err);
  }

  /**
   * List every unit's subtree below its (already listed) directory entry: the workers take units
   * from the shared counter, and so does this thread, yielding after each one so that the workers'
   * chunks are assembled and the compression pool is fed.
   */
  async run(units: Frame[]): Promise<void> {
    this.units = units;
    this.stacks = units.map((u) => [u]);
    const finished = new Promise<void>((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      this.settle = { resolve, reject };
    });
    finished.catch(() => undefined); // awaited below
    const jobs = units.map((u) => ({ path: u.path, id: u.id }));
    for (const w of this.workers) w.postMessage(jobs);
    const listing = new Listing(4096);
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const unit = Atomics.add(this.next, 0, 1);
      if (unit >= units.length) break;
      try {
        listDirectory(units[unit].path, true, this.maxFileSize, listing, Infinity, undefined, units[unit].id);
      } catch (err) {
        this.fail(err instanceof ScanError ? usageError(err) : err);
        throw this.failure;
      }
      this.asm.apply(listing.take(), this.stacks[unit]);
      finishDir(units[unit].dir);
      await new Promise((r) => setImmediate(r));
    }
    await finished;
  }

  stop(): void {
    this.failure ??= new GridforgeError('source scan stopped');
    for (const w of this.workers) void w.terminate();
  }
}
