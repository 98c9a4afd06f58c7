/**
 * Repository sink: writes a sandbox straight into a CernVM-FS repository transaction (`cvmfs-publish/index.ts`) with no intermediate tree on disk: file contents are read from the
 * layer blobs by offset and compressed on every core (`tx.putFileRange`). The previous tree at the
 * path is replaced in the same transaction; any failure aborts it, so the repository is unchanged.
 * CernVM-FS hard links exist only within one directory: links across directories become copies
 * (same content object). Extended attributes (security.capability among them, binary) go into the
 * catalog's xattr column; the format written here holds values up to 255 bytes
 * (cvmfs-publish/xattr.ts), so a longer one is refused naming the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { noProgress } from '../base/progress.ts';
import { openTransaction, type Transaction } from '../cvmfs-publish/index.ts';
import { fixDirMode, fixFileMode } from '../images/sandbox/fs-sink.ts';
import type { FileContent, SandboxSink, SinkMeta } from '../images/sandbox/sink.ts';
import { writeSandboxToSink, type SandboxOptions, type SandboxResult } from '../images/sandbox/index.ts';

export function cleanRepoPath(p: string): string {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.length === 0 || parts.includes('..')) throw new UsageError(`path in repository ${JSON.stringify(p)} must be a non-root relative path without '..'`, { where: '--path', hint: 'E.g. containers/fs/singularity/alma9.' });
  return parts.join('/');
}

/** Catalog xattrs of one entry, checked against what cvmfs-publish/xattr.ts can encode (version 1). */
export function repoXattrs(p: string, x: ReadonlyMap<string, Buffer> | undefined): Record<string, Buffer> | undefined {
  if (!x?.size) return undefined;
  const hint = 'CernVM-FS catalogs written by gridforge hold at most 255 attributes per entry, names and values up to 255 bytes each; remove the attribute from the image.';
  if (x.size > 255) throw new UsageError(`${x.size} extended attributes on one entry`, { where: p, hint });
  for (const [k, v] of x) {
    if (Buffer.byteLength(k) > 255) throw new UsageError(`extended attribute name ${JSON.stringify(k.slice(0, 40))}... is longer than 255 bytes`, { where: p, hint });
    if (v.length > 255) throw new UsageError(`extended attribute ${k} is ${v.length} bytes, above the 255 bytes the repository format holds`, { where: p, hint });
  }
  return Object.fromEntries(x);
}

export class RepositorySink implements SandboxSink {
  readonly carriesXattrs = true;
  private done = false;
  fifosSkipped = 0;
  private readonly skipped = new Set<string>();
  constructor(private readonly tx: Transaction, private readonly base: string) {}
  private p(p: string): string {
    return p === '' ? this.base : `${this.base}/${p}`;
  }
  private fileMeta(p: string, meta: SinkMeta) {
    return { mode: fixFileMode(meta.mode), uid: meta.uid, gid: meta.gid, mtime: meta.mtime, xattrs: repoXattrs(`/${p}`, meta.xattrs) };
  }
  async dir(p: string, meta: SinkMeta): Promise<void> {
    await this.tx.mkdir(this.p(p), { mode: fixDirMode(meta.mode), uid: meta.uid, gid: meta.gid, mtime: meta.mtime, xattrs: repoXattrs(`/${p}`, meta.xattrs) });
  }
  async file(p: string, c: FileContent, meta: SinkMeta): Promise<void> {
    // Contents in a blob go to the transaction's compression pool (every core); finish() waits for them.
    if (c.buffer || c.size === 0) await this.tx.putFile(this.p(p), c.buffer ?? Buffer.alloc(0), this.fileMeta(p, meta));
    else await this.tx.putFileRange(this.p(p), c.file!, c.offset!, c.size, this.fileMeta(p, meta));
  }
  async symlink(p: string, target: string, meta: SinkMeta): Promise<void> {
    await this.tx.symlink(this.p(p), target, { uid: meta.uid, gid: meta.gid, mtime: meta.mtime, xattrs: repoXattrs(`/${p}`, meta.xattrs) });
  }
  async hardlink(p: string, target: string, c: FileContent, meta: SinkMeta): Promise<void> {
    if (this.skipped.has(target)) { this.fifosSkipped++; return; }
    if (path.posix.dirname(p) === path.posix.dirname(target)) await this.tx.hardlink(this.p(p), this.p(target));
    else await this.file(p, c, meta);
  }
  async fifo(p: string): Promise<void> {
    this.fifosSkipped++; // a FIFO in a read-only network filesystem serves no purpose
    this.skipped.add(p);
  }
  /** Every object stored before the image's layer data is closed (the commit comes after). */
  async finish(): Promise<void> {
    await this.tx.waitForObjects();
    this.done = true;
  }
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.tx.abort();
  }
}

export async function writeSandboxToRepository(opts: SandboxOptions & { repo: string; path: string; tag?: string; message?: string; beforeCommit?: (tx: Transaction) => Promise<void> }): Promise<SandboxResult & { repo: string; path: string; revision: number; rootHash: string }> {
  const base = cleanRepoPath(opts.path);
  if (!fs.existsSync(opts.repo)) throw new UsageError('no such repository directory', { where: opts.repo, hint: 'Create it with gridforge repo init.' });
  const tx = openTransaction(opts.repo, { operation: `image sandbox ${opts.source} -> ${base}`, onProgress: opts.onProgress });
  const sink = new RepositorySink(tx, base);
  let result: SandboxResult;
  try {
    if (tx.exists(base)) await tx.remove(base);
    result = await writeSandboxToSink(opts, sink);
  } catch (e) {
    await sink.abort();
    throw e;
  }
  (opts.onProgress ?? noProgress)(`committing ${opts.repo}:${base}`);
  try {
    // more changes in the same revision (image sync: its links and state with the last tree)
    if (opts.beforeCommit) await opts.beforeCommit(tx);
    const c = await tx.commit({ tag: opts.tag, message: opts.message ?? `sandbox ${opts.source} -> ${base}` });
    return { ...result, repo: opts.repo, path: base, revision: c.revision, rootHash: c.rootHash };
  } catch (e) {
    try { await tx.abort(); } catch { /* already closed */ }
    throw e;
  }
}
