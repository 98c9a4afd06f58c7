/**
 * Reader over a local repository directory or an HTTP URL (e.g. `gridforge repo serve`). Before it
 * returns anything it checks the whitelist (master key signature, expiry, name, certificate
 * fingerprint) and the manifest signature; every object it fetches is checked against its hash.
 * Tampered data makes it throw with the object's path.
 */
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { entriesFromCatalog, readCatalog, type OpenedCatalog } from './catalog.ts';
import { catalogNameProblems } from './catalog-names.ts';
import type { Entry } from './entry.ts';
import { normalizeRepoPath, objectPath, type ObjectSuffix } from './format.ts';
import { History, type Tag } from './history.ts';
import { checkManifestSignature, parseManifest, type Manifest } from './manifest.ts';
import { verifyAndInflate } from './object-store.ts';
import { sourceFor, type RepoSource } from './source.ts';
import { anchorHint, findTrustAnchor } from './trust-anchor.ts';
import { checkWhitelist, type WhitelistInfo } from './whitelist.ts';

export interface ReaderOptions {
  /** master public key (PEM file path, PEM text or KeyObject); default for a local directory: trust-anchor.ts (never a key inside the repository) */
  publicKey?: string | KeyObject;
  /** read this tag's revision instead of the current one */
  tag?: string;
  /** skip signature checks (not recommended; for damaged repositories) */
  insecure?: boolean;
}

export interface StatResult extends Pick<Entry, 'type' | 'mode' | 'uid' | 'gid' | 'mtime' | 'size' | 'hash' | 'target' | 'chunks'> {
  path: string;
  xattrs?: Record<string, string>;
  hardlinkGroup?: number;
  nestedCatalog: boolean;
}

function resolveKey(k: string | KeyObject): KeyObject {
  if (typeof k !== 'string') return k;
  try {
    return createPublicKey(k.includes('-----BEGIN') ? k : fs.readFileSync(k, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read the master public key: ${(err as Error).message}`, { where: k.includes('-----BEGIN') ? '--public-key' : k, hint: "pass the repository's <fqrn>.pub (a PEM public key)" });
  }
}

function defaultPublicKey(dirOrUrl: string, fqrn: string): KeyObject {
  const where = dirOrUrl;
  if (/^https?:\/\//.test(dirOrUrl)) throw new UsageError(`no master public key to check ${dirOrUrl}`, { where, hint: `a served repository is checked against a key you hold: ${anchorHint(fqrn)}` });
  const found = findTrustAnchor(dirOrUrl, fqrn);
  if (found.anchor) return found.anchor.key;
  const why = found.refused.length ? ` (not trusted: ${found.refused.join('; ')})` : '';
  throw new UsageError(`no trusted master public key to check ${dirOrUrl}${why}`, { where, hint: anchorHint(fqrn) });
}

export class RepositoryReader {
  private catalogs = new Map<string, OpenedCatalog>();
  /** `hash\0rootPath` of catalogs whose names and md5path keys were checked (catalog-names.ts) */
  private checkedNames = new Set<string>();
  private root!: Entry;
  rootHash!: string;
  revision!: number;

  private constructor(
    readonly source: RepoSource,
    readonly manifest: Manifest,
    readonly whitelist: WhitelistInfo | undefined,
    readonly certificate: X509Certificate | undefined,
  ) {}

  static async open(dirOrUrl: string, opts: ReaderOptions = {}): Promise<RepositoryReader> {
    const source = sourceFor(dirOrUrl);
    let raw: Buffer;
    try {
      raw = await source.get('.cvmfspublished');
    } catch (err) {
      throw new UsageError(`no repository at ${dirOrUrl} (.cvmfspublished: ${(err as Error).message})`, { where: dirOrUrl, hint: 'pass a repository directory or the URL it is served at' });
    }
    let parsed;
    try {
      parsed = parseManifest(raw);
    } catch (err) {
      throw new GridforgeError(`refusing repository: ${(err as Error).message}`, { where: `${dirOrUrl}/.cvmfspublished` });
    }
    const m = parsed.manifest;
    let wlInfo: WhitelistInfo | undefined;
    let cert: X509Certificate | undefined;
    const reader0 = new RepositoryReader(source, m, undefined, undefined);
    if (!opts.insecure) {
      const key = opts.publicKey ? resolveKey(opts.publicKey) : defaultPublicKey(dirOrUrl, m.name);
      const certPem = await reader0.object(m.certificate, 'X');
      cert = new X509Certificate(certPem);
      const wl = checkWhitelist(await source.get('.cvmfswhitelist').catch(() => Buffer.alloc(0)), key);
      wlInfo = wl.info;
      const problems = [...wl.problems];
      if (wl.info && wl.info.name !== m.name) problems.push(`names repository ${wl.info.name}, manifest names ${m.name}`);
      if (wl.info && !wl.info.fingerprints.includes(cert.fingerprint.toUpperCase())) problems.push('does not list the certificate that signed the manifest');
      if (problems.length) throw new GridforgeError(`refusing repository: .cvmfswhitelist ${problems.join('; ')}`, { where: `${dirOrUrl}/.cvmfswhitelist`, hint: 're-sign the whitelist with the master key (any publish does) or check the public key' });
      const sigProblem = checkManifestSignature(parsed.signed, cert.publicKey);
      if (sigProblem) throw new GridforgeError(`refusing repository: .cvmfspublished ${sigProblem}`, { where: `${dirOrUrl}/.cvmfspublished` });
    }
    const reader = new RepositoryReader(source, m, wlInfo, cert);
    let rootHash = m.rootHash;
    let revision = m.revision;
    if (opts.tag) {
      const t = (await reader.tags()).find((x) => x.name === opts.tag);
      if (!t) throw new UsageError(`no tag "${opts.tag}"`, { where: opts.tag, hint: 'list tags with `gridforge repo tags <repo>`' });
      rootHash = t.hash;
      revision = t.revision;
    }
    await reader.setRoot(rootHash, revision);
    return reader;
  }

  async setRoot(hash: string, revision: number): Promise<void> {
    const cat = await this.checkedCatalog(hash, '');
    this.root = entriesFromCatalog(cat, '');
    this.rootHash = hash;
    this.revision = revision;
  }

  /** Fetch, hash-check and inflate an object. */
  async object(hash: string, suffix: ObjectSuffix = ''): Promise<Buffer> {
    const rel = objectPath(hash, suffix);
    let bytes: Buffer;
    try {
      bytes = await this.source.get(rel);
    } catch (err) {
      throw new GridforgeError(`missing object (${(err as Error).message})`, { where: rel });
    }
    try {
      return verifyAndInflate(bytes, hash, rel);
    } catch (err) {
      throw new GridforgeError(`refusing object: ${(err as Error).message}`, { where: rel });
    }
  }

  async catalog(hash: string): Promise<OpenedCatalog> {
    let c = this.catalogs.get(hash);
    if (!c) {
      c = readCatalog(await this.object(hash, 'C'));
      this.catalogs.set(hash, c);
    }
    return c;
  }

  /** A catalog mounted at `rootPath` whose every row is one path component keyed by its path. */
  private async checkedCatalog(hash: string, rootPath: string): Promise<OpenedCatalog> {
    const cat = await this.catalog(hash);
    const k = `${hash}\0${rootPath}`;
    if (this.checkedNames.has(k)) return cat;
    const problems = catalogNameProblems(cat, rootPath);
    if (problems.length > 0) {
      const rel = objectPath(hash, 'C');
      throw new UsageError(`refusing catalog ${rel} (catalog ${rootPath || '/'}): ${problems.slice(0, 5).map((p) => `${p.path}: ${p.problem}`).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`, {
        where: problems[0].path,
        hint: 'this repository was not written by a correct publisher (or was forged); do not use it, and run `gridforge repo verify` on it to list every bad entry',
      });
    }
    this.checkedNames.add(k);
    return cat;
  }

  private async fill(node: Entry, p: string): Promise<void> {
    if (!node.unloaded) return;
    const loaded = entriesFromCatalog(await this.checkedCatalog(node.catalog!.hash, p), p);
    node.children = loaded.children;
    node.unloaded = false;
  }

  private async lookup(p: string): Promise<Entry | undefined> {
    const full = normalizeRepoPath(p);
    let node: Entry | undefined = this.root;
    let cur = '';
    for (const part of full.split('/').filter(Boolean)) {
      if (!node || node.type !== 'dir') return undefined;
      await this.fill(node, cur);
      cur += `/${part}`;
      node = node.children!.get(part);
    }
    if (node?.type === 'dir') await this.fill(node, cur);
    return node;
  }

  private toStat(e: Entry, p: string): StatResult {
    return {
      path: p || '/',
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: e.mtime,
      size: e.size,
      hash: e.hash,
      chunks: e.chunks,
      target: e.target,
      xattrs: e.xattrs ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('utf8')])) : undefined,
      hardlinkGroup: e.hlGroup || undefined,
      nestedCatalog: !!e.nested,
    };
  }

  async stat(p: string): Promise<StatResult | undefined> {
    const e = await this.lookup(p);
    return e ? this.toStat(e, normalizeRepoPath(p)) : undefined;
  }

  async ls(p: string): Promise<StatResult[]> {
    const full = normalizeRepoPath(p);
    const e = await this.lookup(full);
    if (!e) throw new UsageError(`${full || '/'} does not exist in revision ${this.revision}`, { where: full || '/', hint: 'list its parent with `gridforge repo ls`' });
    if (e.type !== 'dir') return [this.toStat(e, full)];
    return [...e.children!.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((c) => this.toStat(c, `${full}/${c.name}`));
  }

  async readFile(p: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const b of this.stream(p)) parts.push(b);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /**
   * A file's content piece by piece: its object, or each chunk of a chunked file in offset order
   * (as the cvmfs client reads the `chunks` table: catalog_sql.cc SqlChunksListing), each checked
   * against its name and the chunk list (contiguous from 0, sizes adding up to the file's).
   */
  async *stream(p: string): AsyncGenerator<Buffer> {
    const full = normalizeRepoPath(p);
    const e = await this.lookup(full);
    if (!e) throw new UsageError(`${full || '/'} does not exist in revision ${this.revision}`, { where: full || '/', hint: 'check the path with `gridforge repo ls`' });
    if (e.type !== 'file') throw new UsageError(`${full} is a ${e.type}, not a regular file`, { where: full, hint: e.type === 'symlink' ? `it points to ${e.target}` : 'name a file' });
    if (!e.chunks) {
      if (!e.hash) throw new GridforgeError('regular file without a content hash', { where: full });
      const data = await this.object(e.hash);
      if (data.length !== e.size) throw new GridforgeError(`object size ${data.length} differs from the catalog size ${e.size}`, { where: `${full} (${objectPath(e.hash)})` });
      yield data;
      return;
    }
    let at = 0;
    for (const c of e.chunks) {
      if (c.offset !== at || !/^[0-9a-f]{40}$/.test(c.hash)) throw new GridforgeError(`chunk list is broken at offset ${c.offset} (expected ${at})`, { where: full });
      const data = await this.object(c.hash, 'P');
      if (data.length !== c.size) throw new GridforgeError(`chunk object size ${data.length} differs from the chunk size ${c.size}`, { where: `${full} (${objectPath(c.hash, 'P')})` });
      at += c.size;
      yield data;
    }
    if (at !== e.size) throw new GridforgeError(`chunks add up to ${at} bytes, the catalog says ${e.size}`, { where: full });
  }

  /** Every entry below (and including) a path, parents before children. */
  async *walk(p = ''): AsyncGenerator<StatResult> {
    const full = normalizeRepoPath(p);
    const e = await this.lookup(full);
    if (!e) return;
    const self = this;
    async function* rec(node: Entry, np: string): AsyncGenerator<StatResult> {
      yield self.toStat(node, np);
      if (node.type !== 'dir') return;
      await self.fill(node, np);
      for (const c of [...node.children!.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) yield* rec(c, `${np}/${c.name}`);
    }
    yield* rec(e, full);
  }

  async tags(): Promise<Tag[]> {
    if (!this.manifest.history) return [];
    const h = History.open(await this.object(this.manifest.history, 'H'));
    try {
      return h.tags();
    } finally {
      h.close();
    }
  }
}

export function openRepository(dirOrUrl: string, opts: ReaderOptions = {}): Promise<RepositoryReader> {
  return RepositoryReader.open(dirOrUrl, opts);
}
