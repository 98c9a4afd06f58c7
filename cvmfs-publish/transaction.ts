/**
 * Transactions: edit the tree of the current revision in memory (nested catalogs opened lazily),
 * store content objects as they come (compression pool), then on commit write catalogs bottom-up
 * (only the changed ones), then history, reflog, whitelist and the manifest LAST by atomic rename.
 * Killed at any instant, the previous manifest stays and the repository still verifies. A
 * transaction that fails or is aborted removes every object it wrote (data/ as before it began).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { writeCatalog } from './catalog.ts';
import { buildRowImage } from './catalog-image.ts';
import { RowImageStore } from './catalog-image-store.ts';
import { CompressPool, type FileJobResult, type ScannedFile } from './compress-pool.ts';
import { isListId } from './chunk-cache.ts';
import { gatherContent } from './chunk-input.ts';
import type { ChunkRef } from './chunk-params.ts';
import { MAX_CATALOG_ENTRIES, normalizeRepoPath, type Counters } from './format.ts';
import { newDir, type Entry, type Meta } from './entry.ts';
import { RepoLock } from './lock.ts';
import { acquireRecovering, type AbortResult } from './abort.ts';
import { noProgress, type Progress } from '../base/progress.ts';
import { ObjectStore, removeTempObjects } from './object-store.ts';
import { finishPending, loadRepoKeys, readHead, readHistory, readReflog, putStockZlibObject, readRepoConfig, stateDir, stockMetainfo, writeHead, type RepoConfig } from './repository.ts';
import { ScanCache } from './scan-cache.ts';
import { scanSource, type SourceDir } from './source-scan.ts';
import { loadCatalogEntries, loadNested } from './tree-loader.ts';

const EMPTY_OBJECT = { hash: 'e8ec3d88b62ebf526e4e5a4ff6162a3aa48a6b78', compressed: zlib.deflateSync(Buffer.alloc(0)) };

export interface TransactionOptions {
  /** refuse files larger than this (bytes); default from the repository config */
  maxFileSize?: number;
  /** progress lines (default: none; the CLI passes its printer) */
  onProgress?: Progress;
  /** what the lock file says this transaction is doing */
  operation?: string;
  /** split catalogs above this many entries (default 200,000) */
  maxCatalogEntries?: number;
  /**
   * Directories matching these patterns (`*` = one path component) get their own nested catalog
   * when a transaction writes them: one per image, package version and runtime (default
   * DEFAULT_NEST_PATTERNS). Trees published with putTree and directories holding a
   * `.cvmfscatalog` marker are always nested.
   */
  nestPatterns?: string[];
}

export const DEFAULT_NEST_PATTERNS = ['/containers/fs/singularity/*', '/containers/bin/*/*', '/*/Packages/*/*', '/java/JDKs/*/*'];

function patternRegex(patterns: string[]): RegExp {
  const parts = patterns.map((p) => `^${normalizeRepoPath(p).split('/').map((c) => (c === '*' ? '[^/]+' : c.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
  return parts.length > 0 ? new RegExp(parts.join('|')) : /(?!)/; // no patterns: nothing (an empty RegExp would match every path)
}

export interface CommitOptions {
  tag?: string;
  message?: string;
}

export interface CommitResult {
  revision: number;
  rootHash: string;
  tag?: string;
  catalogsWritten: number;
  /** catalogs written by changing only the rows that differ from their previous version */
  catalogsPatched: number;
  filesStored: number;
  filesReused: number;
  /** the dead publisher's transaction this one cleared before it began (cvmfs-publish/abort.ts recoverDeadHolder) */
  recovered?: AbortResult;
}

export interface PutTreeResult {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

function stepDelay(): number {
  return Number(process.env.GRIDFORGE_TXN_STEP_DELAY_MS ?? 0);
}

async function sleep(ms: number): Promise<void> {
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** Name of the marker of a nested catalog: a file `putFile` may write, never a directory or a tree. */
const MARKER = '.cvmfscatalog';

/** What is wrong with one component of a repository path (a predicate: "is empty"), or undefined. */
function componentProblem(c: string, last: boolean, markerFile: boolean): string | undefined {
  if (c === '') return 'is empty (two slashes in a row)';
  if (c === '..') return 'escapes the repository';
  if (c === '.') return 'is "."';
  if (c.includes('\0')) return 'contains a NUL character';
  if (c.includes('\n') || c.includes('\r')) return 'contains a line break';
  // lone surrogates (API callers) or U+FFFD (what invalid bytes on the command line decode to)
  if (c.includes('\uFFFD') || Buffer.from(c, 'utf8').toString('utf8') !== c) return 'is not valid UTF-8';
  if (c === MARKER && !(last && markerFile)) return `is the reserved name ${MARKER} (the marker of a nested catalog)`;
  return undefined;
}

/**
 * A repository path (relative, or starting with `/`; one trailing `/` allowed) as `/a/b`, or '' for
 * the root. Refuses (UsageError naming the component) `..`, `.`, empty components, NUL, line breaks,
 * text that is not UTF-8 and `.cvmfscatalog` (allowed as the last component only with `markerFile`:
 * putFile may write a marker).
 */
export function checkRepoPath(p: string, what = 'path', markerFile = false): string {
  if (p === '' || p === '/') return '';
  const body = p.replace(/^\//, '').replace(/\/$/, '');
  const parts = body.split('/');
  parts.forEach((c, i) => {
    const problem = componentProblem(c, i === parts.length - 1, markerFile);
    if (problem === undefined) return;
    throw new UsageError(`component of ${what} ${JSON.stringify(p)} ${problem}`, {
      where: JSON.stringify(c),
      hint: 'use a path inside the repository made of plain UTF-8 names, e.g. containers/fs/singularity/alma9',
    });
  });
  return normalizeRepoPath(body);
}

/** A file's content as the pool stored it: one object, or chunks (then no hash: the catalog's hash column is NULL). */
function setContent(e: Entry, r: { hash: string; size: number; chunks?: ChunkRef[] }): void {
  e.size = r.size;
  e.hash = r.chunks ? undefined : r.hash;
  e.chunks = r.chunks?.map(({ offset, size, hash, digest }) => ({ offset, size, hash, digest }));
}

/** A regular file entry written through the transaction API (putFile, putFileRange). */
function fileEntry(name: string, meta: Meta, size: number, hash: string | undefined): Entry {
  return { name, type: 'file', mode: 0o100000 | (meta.mode & 0o7777), uid: meta.uid, gid: meta.gid, mtime: meta.mtime, xattrs: meta.xattrs, size, hash };
}

export class Transaction {
  private root: Entry;
  private pool?: CompressPool;
  private pendingCount = 0;
  /** every pool job (putTree files, putFileRange): awaited before objects are removed again */
  private jobs: Promise<unknown>[] = [];
  /** objects this transaction wrote that were not there before (removed again unless it commits) */
  private created = new Set<string>();
  private stored = 0;
  private reused = 0;
  private closed = false;
  private readonly say: (m: string) => void;
  readonly config: RepoConfig;
  readonly store: ObjectStore;
  private readonly cache: ScanCache;
  private readonly images: RowImageStore;
  /** catalogs this transaction rewrote: their row images go once it commits */
  private replacedImages: string[] = [];
  /** row images being written (awaited before the lock is released) */
  private imageWrites: Promise<void>[] = [];
  private patched = 0;
  private readonly baseRevision: number;
  private readonly baseRoot: string;
  private readonly maxFileSize: number;
  private readonly maxCatalogEntries: number;
  private readonly nestRe: RegExp;

  /** set when opening cleared the transaction of a publisher that is provably gone */
  recovered?: AbortResult;

  private constructor(readonly repoDir: string, private lock: RepoLock, opts: TransactionOptions) {
    this.config = readRepoConfig(repoDir);
    this.store = new ObjectStore(repoDir, (f) => this.created.add(f));
    this.say = opts.onProgress ?? noProgress;
    this.maxFileSize = opts.maxFileSize ?? this.config.maxFileSize;
    this.maxCatalogEntries = opts.maxCatalogEntries ?? MAX_CATALOG_ENTRIES;
    this.nestRe = patternRegex(opts.nestPatterns ?? DEFAULT_NEST_PATTERNS);
    finishPending(repoDir);
    const { manifest } = readHead(repoDir);
    this.baseRevision = manifest.revision;
    this.baseRoot = manifest.rootHash;
    this.root = loadCatalogEntries(this.store, manifest.rootHash, '');
    this.cache = new ScanCache(path.join(stateDir(repoDir), 'scan-cache.bin'));
    this.images = new RowImageStore(repoDir);
    fs.mkdirSync(path.join(repoDir, 'data', 'txn'), { recursive: true });
  }

  static open(repoDir: string, opts: TransactionOptions = {}): Transaction {
    const dir = path.resolve(repoDir);
    readRepoConfig(dir); // fail on a non-repository before taking a lock
    // a publisher killed earlier (dead, zombie, pid reused; same host only) left its lock: clear it as `repo abort` does
    const { lock, recovered } = acquireRecovering(dir, opts.operation ?? 'transaction');
    try {
      const tx = new Transaction(dir, lock, opts);
      tx.recovered = recovered;
      return tx;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  get revision(): number {
    return this.baseRevision;
  }

  private assertOpen(): void {
    if (this.closed) throw new GridforgeError('transaction is already committed or aborted');
  }

  /** Walk to a directory, opening nested catalogs; marks the path dirty. Creates parents if asked. */
  private dirAt(p: string, create: boolean, meta?: Meta): Entry {
    let node = this.root;
    node.dirty = true;
    let cur = '';
    for (const part of p.split('/').filter(Boolean)) {
      loadNested(this.store, node, cur);
      cur += `/${part}`;
      let next = node.children!.get(part);
      if (!next) {
        if (!create) throw new UsageError(`${cur} does not exist in the repository`, { where: cur, hint: 'check the path with `gridforge repo ls`' });
        next = newDir(part, meta ?? { mode: 0o40755, uid: 0, gid: 0, mtime: Math.floor(Date.now() / 1000) });
        node.children!.set(part, next);
      }
      if (next.type !== 'dir') throw new UsageError(`${cur} is not a directory in the repository`, { where: cur, hint: 'remove it first or choose another path' });
      node = next;
      node.dirty = true;
    }
    loadNested(this.store, node, cur);
    return node;
  }

  /** `markerFile`: the path may name a `.cvmfscatalog` marker (putFile, remove). */
  private split(p: string, what: string, markerFile = false): { parent: string; name: string; full: string } {
    const full = checkRepoPath(p, what, markerFile);
    if (full === '') throw new UsageError(`${what} must not be the repository root`, { where: p, hint: 'name a path below the root' });
    const i = full.lastIndexOf('/');
    return { parent: full.slice(0, i), name: full.slice(i + 1), full };
  }

  private getPool(): CompressPool {
    this.pool ??= new CompressPool(this.repoDir, undefined, this.config.chunking);
    return this.pool;
  }

  /** Hand a file to the compression pool; the object it creates is recorded (removed again unless the transaction commits). */
  private poolJob(file: string, size: number, offset?: number, scanned?: ScannedFile, content?: Buffer): Promise<FileJobResult> {
    const job = this.getPool().storeFile(file, size, offset, scanned, content);
    const recorded = job.then((r) => {
      if (r.created) this.created.add(this.store.file(r.hash));
      for (const c of r.chunks ?? []) if (c.created) this.created.add(this.store.file(c.hash, 'P'));
      return r;
    });
    recorded.catch(() => undefined); // awaited by drain() or a rollback
    this.jobs.push(recorded);
    return recorded;
  }

  /** Replace `pathInRepo` with the tree at `sourceDir` (a nested catalog is made for it). */
  async putTree(pathInRepo: string, sourceDir: string): Promise<PutTreeResult> {
    this.assertOpen();
    const { parent, name, full } = this.split(pathInRepo, 'path');
    const src = path.resolve(sourceDir);
    let st;
    try {
      st = fs.lstatSync(src, { bigint: true });
    } catch {
      throw new UsageError(`source directory ${sourceDir} does not exist`, { where: sourceDir, hint: 'pass an existing directory to publish' });
    }
    if (!st.isDirectory()) throw new UsageError(`source ${sourceDir} is not a directory`, { where: sourceDir, hint: 'pass a directory (its contents replace the repository path)' });
    const dir = this.dirAt(parent, true); // fails on a parent that is not a directory, before any object is written
    // Scan and compress at once: each file goes to the compression stage as soon as it is seen
    // (unchanged ones come from the cache), so the workers do not wait for the whole scan. Bad
    // input found later in the scan removes the objects this scan created: the repository is
    // left as it was.
    const started: Promise<FileJobResult>[] = [];
    const dispatch = (e: Entry, dir: SourceDir, dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number): void => {
      // Cache entries are written only after their objects are in place, and gc drops the cache, so a hit names an existing object.
      const cached = this.cache.get(dev, ino, size, mtimeMs, ctimeMs);
      // a chunked file's entry names its chunk list (chunk-cache.ts); a list no longer known is a miss
      const chunks = cached && isListId(cached) ? this.getPool().chunkList(cached) : undefined;
      if (cached && (chunks || !isListId(cached))) {
        setContent(e, { hash: cached, size, chunks });
        this.reused++;
        return;
      }
      this.pendingCount++;
      // the worker opens the file through the directory listed and refuses it unless it is the file scanned
      const p = this.poolJob(`${dir.path}/${e.name}`, size, undefined, { dirDev: dir.dev, dirIno: dir.ino, dev, ino });
      started.push(p);
      e.pending = p.then((r) => {
        this.cache.set({ dev, ino, size, mtimeMs, ctimeMs }, r.listId ?? r.hash);
        this.stored++;
        return r;
      });
      e.pending.catch(() => undefined);
    };
    const top = newDir(name, { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeMs / 1000n) });
    let counts: PutTreeResult;
    try {
      counts = await scanSource(src, { dev: Number(st.dev), ino: Number(st.ino) }, top, this.maxFileSize, dispatch);
    } catch (err) {
      await this.undoObjects(started);
      throw err;
    }
    // 3. swap it in
    if (!top.children!.has('.cvmfscatalog')) top.children!.set('.cvmfscatalog', this.markerEntry(top));
    top.nested = true;
    top.dirty = true;
    const old = dir.children!.get(name);
    if (old?.nested && old.catalog) top.catalog = { ...old.catalog };
    dir.children!.set(name, top);
    this.say(`publish: ${full} <- ${src} (${counts.files} files, ${counts.dirs} dirs, ${counts.symlinks} symlinks, ${counts.bytes} bytes; ${this.reused} unchanged)`);
    return counts;
  }

  /** Bad input after objects were started: wait for them and delete the ones they created (and forget them in the scan cache). */
  private async undoObjects(started: Promise<FileJobResult>[]): Promise<void> {
    const results = await Promise.allSettled(started);
    const removed = new Set<string>();
    for (const r of results) {
      if (r.status !== 'fulfilled') continue;
      const made = r.value.created ? [this.store.file(r.value.hash)] : [];
      for (const c of r.value.chunks ?? []) if (c.created) made.push(this.store.file(c.hash, 'P'));
      for (const f of made) {
        fs.rmSync(f, { force: true });
        this.created.delete(f);
      }
      if (made.length > 0) removed.add(r.value.listId ?? r.value.hash);
    }
    if (removed.size > 0) this.cache.forget(removed);
  }

  /**
   * The transaction failed or is aborted: stop queued jobs, let running ones finish, then remove
   * every object it created (and the row images of catalogs it created), so data/ is as it was.
   * `cacheWritten`: the scan cache on disk may name those objects, so it goes too.
   */
  private async rollbackObjects(cacheWritten = false): Promise<void> {
    this.pool?.cancelQueued(new Error('transaction aborted'));
    await Promise.allSettled(this.jobs);
    await Promise.allSettled(this.imageWrites);
    for (const f of this.created) {
      fs.rmSync(f, { force: true });
      // a catalog (data/xx/<rest>C): its row image goes with it
      if (f.endsWith('C')) this.images.remove(path.basename(path.dirname(f)) + path.basename(f).slice(0, -1));
    }
    if (cacheWritten && this.created.size > 0) this.cache.discard();
    this.created.clear();
    this.jobs = [];
  }

  private markerEntry(dir: Entry): Entry {
    this.store.storeCompressed(EMPTY_OBJECT.compressed, EMPTY_OBJECT.hash);
    return { name: '.cvmfscatalog', type: 'file', mode: 0o100644, uid: dir.uid, gid: dir.gid, mtime: dir.mtime, size: 0, hash: EMPTY_OBJECT.hash };
  }

  async mkdir(p: string, meta: Meta): Promise<void> {
    this.assertOpen();
    const { parent, name } = this.split(p, 'path');
    const dir = this.dirAt(parent, true);
    const existing = dir.children!.get(name);
    if (existing && existing.type === 'dir') {
      loadNested(this.store, existing, checkRepoPath(p));
      Object.assign(existing, { mode: 0o40000 | (meta.mode & 0o7777), uid: meta.uid, gid: meta.gid, mtime: meta.mtime, xattrs: meta.xattrs, dirty: true });
      return;
    }
    dir.children!.set(name, newDir(name, { ...meta, mode: 0o40000 | (meta.mode & 0o7777) }));
  }

  async putFile(p: string, content: Buffer | Readable, meta: Meta): Promise<void> {
    this.assertOpen();
    const { parent, name, full } = this.split(p, 'path', true);
    let hash: string;
    let size: number;
    const min = this.config.chunking.min;
    if (Buffer.isBuffer(content)) this.checkContentSize(content.length, full);
    else {
      // gathered first: content above the minimum chunk size goes to the pool, which chunks it
      const tmp = path.join(this.repoDir, 'data', 'txn', `${process.pid}.put.${randomBytes(6).toString('hex')}.tmp`);
      let got;
      try {
        got = await gatherContent(content, this.maxFileSize, min, tmp);
      } catch (err) {
        throw new UsageError(`cannot store ${full}: ${(err as Error).message}`, { where: full, hint: 'check the stream and the size limit' });
      }
      if ('file' in got) {
        this.pendingJob(parent, fileEntry(name, meta, got.size, undefined), this.poolJob(got.file, got.size, 0), () => fs.rmSync(got.file, { force: true }));
        return;
      }
      content = got.buffer;
    }
    if (content.length > min) {
      this.pendingJob(parent, fileEntry(name, meta, content.length, undefined), this.poolJob(full, content.length, undefined, undefined, content));
      return;
    }
    ({ hash } = this.store.putBuffer(content));
    size = content.length;
    this.stored++;
    const dir = this.dirAt(parent, true);
    dir.children!.set(name, fileEntry(name, meta, size, hash));
  }

  /** Put a file entry whose content the pool is storing (drain fills it in); `done` runs once the job ends. */
  private pendingJob(parent: string, e: Entry, job: Promise<FileJobResult>, done?: () => void): void {
    const dir = this.dirAt(parent, true);
    this.pendingCount++;
    e.pending = job.then((r) => {
      this.stored++;
      return r;
    });
    if (done) e.pending.then(done, done);
    e.pending.catch(() => undefined); // awaited by drain()
    dir.children!.set(e.name, e);
  }

  private checkContentSize(size: number, where: string): void {
    if (size > this.maxFileSize) throw new UsageError(`content is ${size} bytes, above the size limit of ${this.maxFileSize} bytes`, { where, hint: 'raise the size limit or leave the file out' });
  }

  /**
   * Store `size` bytes of `file` from `offset` (a file inside a layer blob, say) at `p`. The
   * compression pool reads and compresses it on every core while the caller goes on; commit (or
   * waitForObjects) waits for it, so `file` must stay readable until then.
   */
  async putFileRange(p: string, file: string, offset: number, size: number, meta: Meta): Promise<void> {
    this.assertOpen();
    const { parent, name, full } = this.split(p, 'path');
    this.checkContentSize(size, full);
    const dir = this.dirAt(parent, true);
    this.pendingCount++;
    const e = fileEntry(name, meta, size, undefined);
    const job = this.poolJob(file, size, offset);
    e.pending = job.then((r) => {
      this.stored++;
      return r;
    });
    e.pending.catch(() => undefined); // awaited by drain()
    dir.children!.set(name, e);
  }

  /**
   * Wait until every object handed to the compression pool is stored (commit does this too). If
   * one cannot be stored (a range past the end of its file, a source file that changed), the
   * transaction is aborted: every object it wrote is removed and the lock released.
   */
  async waitForObjects(): Promise<void> {
    this.assertOpen();
    try {
      await this.drain();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async symlink(p: string, target: string, meta?: Partial<Meta>): Promise<void> {
    this.assertOpen();
    const { parent, name } = this.split(p, 'path');
    if (target.length === 0 || target.includes('\0') || target.includes('\n')) throw new UsageError(`bad symlink target "${target}"`, { where: p, hint: 'give a non-empty target without newlines' });
    const dir = this.dirAt(parent, true);
    const old = dir.children!.get(name);
    if (old && old.type === 'dir') throw new UsageError(`${p} is a directory; a symlink cannot replace it`, { where: p, hint: 'remove the directory first (`gridforge repo rm`) or link another path' });
    dir.children!.set(name, { name, type: 'symlink', mode: 0o120777, uid: meta?.uid ?? 0, gid: meta?.gid ?? 0, mtime: meta?.mtime ?? Math.floor(Date.now() / 1000), xattrs: meta?.xattrs, size: Buffer.byteLength(target), target });
  }

  async hardlink(p: string, targetPath: string): Promise<void> {
    this.assertOpen();
    const a = this.split(p, 'path');
    const b = this.split(targetPath, 'target');
    if (a.parent !== b.parent) throw new UsageError('hard links must stay within one directory (CernVM-FS limitation)', { where: p, hint: `put ${a.name} next to ${b.full} or copy the file instead` });
    const dir = this.dirAt(a.parent, false);
    const t = dir.children!.get(b.name);
    if (!t || t.type !== 'file') throw new UsageError(`hard link target ${b.full} is not a regular file`, { where: targetPath, hint: 'link to an existing regular file' });
    if (t.pending) {
      setContent(t, await t.pending);
      t.pending = undefined;
    }
    if (!t.hlGroup) {
      let max = 0;
      for (const c of dir.children!.values()) max = Math.max(max, c.hlGroup ?? 0);
      t.hlGroup = max + 1;
    }
    dir.children!.set(a.name, { ...t, name: a.name });
  }

  async remove(p: string): Promise<boolean> {
    this.assertOpen();
    const { parent, name } = this.split(p, 'path', true);
    const dir = this.dirAt(parent, false);
    return dir.children!.delete(name);
  }

  /** Does a path exist in the transaction's tree? */
  exists(p: string): boolean {
    const full = checkRepoPath(p, 'path', true);
    let node: Entry | undefined = this.root;
    let cur = '';
    for (const part of full.split('/').filter(Boolean)) {
      if (!node || node.type !== 'dir') return false;
      loadNested(this.store, node, cur);
      cur += `/${part}`;
      node = node.children!.get(part);
    }
    return node !== undefined;
  }

  /** Wait for every content object; fills entry hashes. */
  private async drain(): Promise<void> {
    const waits: Promise<void>[] = [];
    let done = 0;
    const total = this.pendingCount;
    const timer = total > 2000 ? setInterval(() => this.say(`objects: ${done}/${total} files compressed`), 2000) : undefined;
    const visit = (e: Entry) => {
      if (e.pending) {
        waits.push(
          e.pending.then((r) => {
            setContent(e, r);
            e.pending = undefined;
            done++;
          }),
        );
      }
      if (e.children && !e.unloaded) for (const c of e.children.values()) visit(c);
    };
    visit(this.root);
    try {
      await Promise.all(waits);
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  /** Count the entries that would go into the catalog rooted at `dir`. */
  private static countCatalog(dir: Entry): number {
    let n = 1;
    for (const c of dir.children!.values()) {
      n++;
      if (c.type === 'dir' && !c.nested) n += Transaction.countCatalog(c) - 1;
    }
    return n;
  }

  /** Nest directories of this catalog that match the nesting patterns or hold a .cvmfscatalog marker (writeCatalogs adds the marker). */
  private patternNest(dir: Entry, p: string): void {
    for (const c of dir.children!.values()) {
      if (c.type !== 'dir' || c.nested) continue;
      const cp = `${p}/${c.name}`;
      if (this.nestRe.test(cp) || c.children!.has('.cvmfscatalog')) {
        c.nested = true;
        c.dirty = true;
      } else this.patternNest(c, cp);
    }
  }

  /** Split catalogs above the limit by turning their largest subdirectories into nested catalogs. */
  private autoNest(dir: Entry): void {
    for (;;) {
      const total = Transaction.countCatalog(dir);
      if (total <= this.maxCatalogEntries) return;
      let best: Entry | undefined;
      let bestN = 0;
      const pick = (d: Entry) => {
        for (const c of d.children!.values()) {
          if (c.type !== 'dir' || c.nested) continue;
          const n = Transaction.countCatalog(c);
          if (n > bestN && n < total) {
            best = c;
            bestN = n;
          }
          if (n > this.maxCatalogEntries) pick(c);
        }
      };
      pick(dir);
      if (!best || bestN < 2) return; // one flat directory with >200k entries cannot be split
      best.nested = true;
      best.dirty = true;
      best.children!.set('.cvmfscatalog', this.markerEntry(best));
    }
  }

  /** Write the changed catalogs bottom-up; `whileDeflating` runs while each is deflated on the thread pool. */
  private async writeCatalogs(now: number, whileDeflating: () => void): Promise<{ hash: string; size: number; written: string[] }> {
    const written: string[] = [];
    const emit = async (node: Entry, p: string): Promise<{ hash: string; size: number; total: Counters }> => {
      if (node.unloaded && node.dirty) loadNested(this.store, node, p);
      if (p !== '' && (node.unloaded || (!node.dirty && node.catalog))) {
        if (!node.catalog!.total) {
          const loaded = loadCatalogEntries(this.store, node.catalog!.hash, p);
          node.catalog!.total = loaded.catalog!.total;
        }
        return { hash: node.catalog!.hash, size: node.catalog!.size, total: node.catalog!.total! };
      }
      // every nested catalog root holds its marker, however it became nested (patterns, split, putTree,
      // a catalog written before this rule): `cvmfs_swissknife check` reports a nested catalog without one
      if (p !== '' && !node.children!.has(MARKER)) node.children!.set(MARKER, this.markerEntry(node));
      this.patternNest(node, p);
      this.autoNest(node);
      const nested: { path: string; hash: string; size: number; total: Counters }[] = [];
      const visit = async (d: Entry, dp: string) => {
        for (const c of d.children!.values()) {
          if (c.type !== 'dir') continue;
          const cp = `${dp}/${c.name}`;
          if (c.nested) nested.push({ path: cp, ...(await emit(c, cp)) });
          else await visit(c, cp);
        }
      };
      await visit(node, p);
      const prev = node.catalog;
      // the previous catalog is read and inflated on the thread pool while the rows are built
      const base = prev ? this.images.loadBase(this.store, prev.hash, prev.size) : undefined;
      const rows = buildRowImage(p, node);
      const res = writeCatalog({
        rootPath: p,
        root: node,
        revision: p === '' ? this.baseRevision + 1 : (prev?.revision ?? 0) + 1,
        previousRevision: prev?.hash ?? '',
        lastModified: now,
        ttl: this.config.ttl,
        nested,
        rows,
        base: await base,
      });
      const stored = this.store.putBufferParallel(res.db, 'C');
      stored.catch(() => undefined); // awaited below, after the caller's work for this pause
      whileDeflating();
      const { hash } = await stored;
      written.push(hash);
      this.imageWrites.push(this.images.write(hash, res.image));
      if (prev && prev.hash !== hash) this.replacedImages.push(prev.hash);
      if (res.patched) this.patched++;
      const total = { ...res.self };
      for (const k of Object.keys(total) as (keyof Counters)[]) total[k] += res.subtree[k];
      this.say(`catalog: ${p || '/'} (${res.entries} entries${res.patched ? ', changed rows written into the previous catalog' : ''}) -> ${hash}`);
      await sleep(stepDelay());
      return { hash, size: res.db.length, total };
    };
    const r = await emit(this.root, '');
    return { hash: r.hash, size: r.size, written };
  }

  async commit(opts: CommitOptions = {}): Promise<CommitResult> {
    this.assertOpen();
    if (opts.tag !== undefined) checkTagName(opts.tag);
    let cacheSaved: Promise<void> | undefined;
    let revision: number | undefined;
    let hash: string | undefined;
    try {
      this.say('stage: objects');
      await this.drain();
      await sleep(stepDelay());
      this.say('stage: catalogs');
      const now = Math.floor(Date.now() / 1000);
      // Catalogs are built here and deflated on the thread pool; while the first one deflates, the
      // scan cache is written (every object it names is stored by now).
      const saveCache = () => {
        cacheSaved ??= Promise.all([this.pool?.saveChunkCache(), this.cache.save()]).then(() => undefined);
        cacheSaved.catch(() => undefined); // awaited below, and before the lock is released
      };
      const catalogs = await this.writeCatalogs(now, saveCache);
      hash = catalogs.hash;
      const { size, written } = catalogs;
      saveCache();
      await cacheSaved;
      this.say('stage: history');
      const { manifest: head } = readHead(this.repoDir);
      if (head.rootHash !== this.baseRoot) throw new GridforgeError('the repository changed under this transaction', { hint: 'retry the publish' });
      const history = readHistory(this.store, head);
      history.setProperty('previous_revision', head.history ?? '');
      revision = this.baseRevision + 1;
      history.advance({ hash, revision, size, timestamp: now });
      if (opts.tag) history.upsert({ name: opts.tag, hash, revision, timestamp: now, description: opts.message ?? '', size });
      const keys = loadRepoKeys(this.repoDir, this.config);
      // stored here first (writeHead finds them in place) so that a failure before the manifest removes them too
      putStockZlibObject(this.store, keys.certPem, 'X'); // deflated as stock zlib does: a Stratum-1 deflates it again (zlib-exact.mjs)
      this.store.putBuffer(history.serialize(), 'H');
      await writeHead(this.repoDir, this.config, keys, {
        rootHash: hash,
        rootSize: size,
        revision,
        history,
        reflog: readReflog(this.repoDir, this.config.name),
        newCatalogs: written,
        metainfo: stockMetainfo(this.store, head.metainfo), // an M object from before zlib-exact.mjs is stored again here, so a failure removes it
        timestamp: now,
        step: async (s) => {
          this.say(`stage: ${s}`);
          await sleep(stepDelay());
        },
      });
      this.say(`published revision ${revision} (root catalog ${hash})`);
      for (const h of this.replacedImages) this.images.remove(h);
      this.created.clear(); // referenced by the new revision
      return { revision, rootHash: hash, tag: opts.tag, catalogsWritten: written.length, catalogsPatched: this.patched, filesStored: this.stored, filesReused: this.reused, ...(this.recovered ? { recovered: this.recovered } : {}) };
    } catch (err) {
      const cacheWritten = cacheSaved !== undefined && (await cacheSaved.then(() => true, () => false));
      if (!this.headWritten(revision, hash)) await this.rollbackObjects(cacheWritten);
      throw err;
    } finally {
      await cacheSaved?.catch(() => undefined);
      await Promise.all(this.imageWrites);
      await this.close();
    }
  }

  /**
   * Did this commit get as far as the new manifest (the commit point)? Then its objects are
   * referenced and stay. When the head cannot be read, they stay too (orphans are harmless; `repo gc`).
   */
  private headWritten(revision: number | undefined, hash: string | undefined): boolean {
    if (revision === undefined || hash === undefined) return false;
    try {
      const { manifest } = readHead(this.repoDir);
      return manifest.revision === revision && manifest.rootHash === hash;
    } catch {
      return true;
    }
  }

  /** Give up the transaction: the objects it wrote are removed again, the lock released. */
  async abort(): Promise<void> {
    if (this.closed) return;
    try {
      await this.rollbackObjects();
    } finally {
      await this.close();
    }
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cut = this.pool?.busy ?? false;
    await this.pool?.close();
    for (const f of fs.readdirSync(path.join(this.repoDir, 'data', 'txn'))) if (f.startsWith(`${process.pid}.`)) fs.rmSync(path.join(this.repoDir, 'data', 'txn', f), { force: true });
    if (cut) removeTempObjects(this.repoDir, process.pid); // workers stopped mid-job may have left temp objects
    this.lock.release();
  }
}

export function checkTagName(tag: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$/.test(tag) || tag === 'trunk' || tag === 'trunk-previous') {
    throw new UsageError(`bad tag name "${tag}"`, { where: '--tag', hint: 'use letters, digits and . _ - : @ + (trunk and trunk-previous are reserved)' });
  }
}

export function openTransaction(repoDir: string, opts: TransactionOptions = {}): Transaction {
  return Transaction.open(repoDir, opts);
}
