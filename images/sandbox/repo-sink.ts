/**
 * Repository sink: writes a sandbox straight into a CernVM-FS repository transaction (contract 5,
 * `cvmfs-publish/index.ts`), with no intermediate tree on disk: file contents are streamed from
 * the layer blobs by offset into `tx.putFile`. The previous tree at the path is replaced in the
 * same transaction; a failure aborts the transaction so the repository is unchanged.
 */
import fs from 'node:fs';
import { GridforgeError, UsageError } from '../../scripts/lib/errors.ts';
import { progress } from '../../scripts/lib/output.ts';
import { fixDirMode, fixFileMode } from './fs-sink.ts';
import type { FileContent, SandboxSink, SinkMeta } from './sink.ts';
import { writeSandboxToSink, type SandboxOptions, type SandboxResult } from './index.ts';

/** The part of the repository transaction API (contract 5) this sink uses. */
interface RepoMeta { mode: number; uid: number; gid: number; mtime: number }
interface Transaction {
  mkdir(path: string, meta: RepoMeta): unknown;
  putFile(path: string, content: Buffer | NodeJS.ReadableStream, meta: RepoMeta): unknown;
  symlink(path: string, target: string, meta?: RepoMeta): unknown;
  hardlink(path: string, targetPath: string): unknown;
  remove(path: string): unknown;
  commit(opts: { tag?: string; message?: string }): Promise<{ revision: number; rootHash: string }> | { revision: number; rootHash: string };
  abort(): unknown;
}
interface RepositoryApi {
  openTransaction(repoDir: string, opts?: unknown): Promise<Transaction> | Transaction;
  openRepository?(repoDir: string, opts?: unknown): Promise<{ stat(path: string): unknown }> | { stat(path: string): unknown };
}

async function loadRepositoryApi(): Promise<RepositoryApi> {
  const mod = '../../cvmfs-publish/index.ts';
  try {
    return (await import(mod)) as RepositoryApi;
  } catch (e) {
    throw new GridforgeError(`the repository API (cvmfs-publish/index.ts) is not available: ${(e as Error).message}`, { hint: 'Write a sandbox directory with --output instead.' });
  }
}

export function cleanRepoPath(p: string): string {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.length === 0 || parts.includes('..')) throw new UsageError(`path in repository ${JSON.stringify(p)} must be a non-root relative path without '..'`, { where: '--path', hint: 'E.g. containers/fs/singularity/alma9.' });
  return parts.join('/');
}

export class RepositorySink implements SandboxSink {
  private done = false;
  constructor(private readonly tx: Transaction, private readonly base: string) {}
  private p(path: string): string {
    return path === '' ? this.base : `${this.base}/${path}`;
  }
  private m(meta: SinkMeta, dir: boolean): RepoMeta {
    return { mode: dir ? fixDirMode(meta.mode) : fixFileMode(meta.mode), uid: meta.uid, gid: meta.gid, mtime: meta.mtime };
  }
  async dir(path: string, meta: SinkMeta): Promise<void> {
    await this.tx.mkdir(this.p(path), this.m(meta, true));
  }
  async file(path: string, c: FileContent, meta: SinkMeta): Promise<void> {
    const content = c.buffer ?? (c.size === 0 ? Buffer.alloc(0) : fs.createReadStream(c.file!, { start: c.offset!, end: c.offset! + c.size - 1, highWaterMark: 1 << 20 }));
    await this.tx.putFile(this.p(path), content, this.m(meta, false));
  }
  async symlink(path: string, target: string, meta: SinkMeta): Promise<void> {
    await this.tx.symlink(this.p(path), target, { mode: 0o777, uid: meta.uid, gid: meta.gid, mtime: meta.mtime });
  }
  async hardlink(path: string, target: string): Promise<void> {
    await this.tx.hardlink(this.p(path), this.p(target));
  }
  async fifo(): Promise<void> {
    // CernVM-FS serves no FIFOs to clients usefully; skipped like device nodes.
  }
  async finish(): Promise<void> {
    this.done = true;
  }
  async abort(): Promise<void> {
    if (!this.done) await this.tx.abort();
  }
}

export async function writeSandboxToRepository(opts: SandboxOptions & { repo: string; path: string; tag?: string; message?: string }): Promise<SandboxResult & { repo: string; path: string; revision: number; rootHash: string }> {
  const base = cleanRepoPath(opts.path);
  if (!fs.existsSync(opts.repo)) throw new UsageError('no such repository directory', { where: opts.repo, hint: 'Create it with gridforge repo init.' });
  const api = await loadRepositoryApi();
  const tx = await api.openTransaction(opts.repo);
  const sink = new RepositorySink(tx, base);
  let result: SandboxResult;
  try {
    try {
      await tx.remove(base);
    } catch {
      // nothing there yet
    }
    result = await writeSandboxToSink(opts, sink);
  } catch (e) {
    await sink.abort();
    throw e;
  }
  if (!opts.quiet) progress(`committing ${opts.repo}:${base}`);
  try {
    const c = await tx.commit({ tag: opts.tag, message: opts.message ?? `sandbox ${opts.source} -> ${base}` });
    return { ...result, repo: opts.repo, path: base, revision: c.revision, rootHash: c.rootHash };
  } catch (e) {
    try { await tx.abort(); } catch { /* already closed */ }
    throw e;
  }
}
