/**
 * Repository on disk: `repo init`, the gridforge state beside the served files
 * (`<repo>/.gridforge/config.json`: name, keys dir, TTL, size limit; lock; caches), reading the
 * current head, and writing a new head (history, reflog, whitelist, manifest LAST by rename).
 */
import fs from 'node:fs';
import path from 'node:path';
import { removeOnInterrupt } from '../base/cleanup.ts';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { makeTempDirBeside, readBoundedFile, writeFileAtomic } from '../base/safe-fs.ts';
import { writeCatalog } from './catalog.ts';
import { DEFAULT_TTL, objectPath } from './format.ts';
import { newDir } from './entry.ts';
import { History } from './history.ts';
import { assertKeysOutside, certFingerprint, defaultKeysDir, ensureKeys, keyFiles, loadKeys, type LoadedKeys } from './keys.ts';
import { parseManifest, signManifest, type Manifest } from './manifest.ts';
import { ObjectStore, sha1Hex, verifyAndInflate } from './object-store.ts';
import { Reflog } from './reflog.ts';
import { signWhitelist } from './whitelist.ts';
import { DEFAULT_CHUNK_PARAMS, checkChunkParams, type ChunkParams } from './chunk-params.ts';
import { deflateStockZlib } from './zlib-exact.mjs';

/** cvmfs_server's CVMFS_FILE_MBYTE_LIMIT default: 1024 MiB (cvmfs/server/cvmfs_server_coda.sh). */
export const DEFAULT_MAX_FILE_SIZE = 1024 ** 3;

export interface RepoConfig {
  name: string;
  keysDir: string;
  ttl: number;
  maxFileSize: number;
  /**
   * `repo init --gc`: the manifest says `G yes` and `repo gc` may delete objects. Off unless
   * chosen, as `cvmfs_server mkfs` without `-z` (cvmfs/server/cvmfs_server_mkfs.sh). Stratum-1s
   * collect garbage only for a Stratum-0 flagged so (cvmfs_server_common.sh
   * is_stratum0_garbage_collectable), and their snapshot skips a root catalog that is missing
   * upstream only then (cvmfs/swissknife_pull.cc): objects must never vanish under `G no`.
   */
  garbageCollectable?: boolean;
  whitelistDays: number;
  /** file chunking sizes (chunk-params.ts; cvmfs_server's defaults when absent) */
  chunking: ChunkParams;
}

export function stateDir(repoDir: string): string {
  return path.join(repoDir, '.gridforge');
}

const FQRN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

export function readRepoConfig(repoDir: string): RepoConfig {
  const file = path.join(stateDir(repoDir), 'config.json');
  if (!fs.existsSync(path.join(repoDir, '.cvmfspublished'))) {
    throw new UsageError(`${repoDir} is not a repository (no .cvmfspublished)`, { where: repoDir, hint: 'create one with `gridforge repo init <repo-dir> --name <fqrn>`' });
  }
  if (!fs.existsSync(file)) {
    throw new UsageError(`${repoDir} was not created by gridforge (no .gridforge/config.json), so it cannot be published to`, { where: repoDir, hint: 'publish into a repository made by `gridforge repo init`; other repositories can be read (ls, cat, checkout, verify --public-key)' });
  }
  const cfg = JSON.parse(readBoundedFile(file, file, 1024 * 1024).toString('utf8')) as Partial<RepoConfig>;
  const full = { ttl: DEFAULT_TTL, maxFileSize: DEFAULT_MAX_FILE_SIZE, whitelistDays: 30, ...cfg, chunking: { ...DEFAULT_CHUNK_PARAMS, ...cfg.chunking } } as RepoConfig;
  checkChunkParams(full.chunking, `${file} key chunking`);
  return full;
}

export interface InitOptions {
  name: string;
  keysDir?: string;
  ttl?: number;
  maxFileSize?: number;
  /** `G yes` in every manifest, and `repo gc` allowed (`repo init --gc`, like `cvmfs_server mkfs -z`); default false */
  garbageCollectable?: boolean;
  whitelistDays?: number;
  /** file chunking sizes (default: cvmfs_server's 4/8/16 MiB) */
  chunking?: ChunkParams;
  /** sign with a complete key set already in the keys directory (`--import-keys`); refused otherwise */
  importKeys?: boolean;
}

export interface InitResult {
  dir: string;
  name: string;
  keysDir: string;
  keysCreated: boolean;
  revision: number;
  rootHash: string;
  publicKey: string;
  garbageCollectable: boolean;
}

const METAINFO = (name: string) => `${JSON.stringify({ administrator: 'gridforge', email: '', organisation: '', description: `${name} (published by gridforge)`, url: '', 'recommended-stratum0': '', 'recommended-stratum1s': [], custom: {} }, null, 2)}\n`;

export async function initRepository(dir: string, opts: InitOptions): Promise<InitResult> {
  const repoDir = path.resolve(dir);
  if (!FQRN_RE.test(opts.name)) {
    throw new UsageError(`repository name "${opts.name}" is not a fully qualified name`, { where: '--name', hint: 'use a DNS-style name like alice.example.org (lowercase letters, digits, dashes, dots)' });
  }
  if (opts.chunking) checkChunkParams(opts.chunking, '--min-chunk-size/--avg-chunk-size/--max-chunk-size');
  checkNewRepoDir(repoDir);
  const keysDir = path.resolve(opts.keysDir ?? defaultKeysDir(repoDir));
  assertKeysOutside(keysDir, repoDir);
  const { files, created, dirCreated } = ensureKeys(keysDir, opts.name, { importExisting: opts.importKeys });
  const dropKeys = () => {
    if (!created) return;
    if (dirCreated) fs.rmSync(keysDir, { recursive: true, force: true });
    else for (const f of [files.masterKey, files.masterPub, files.repoKey, files.repoCert]) fs.rmSync(f, { force: true });
  };
  let tmp: string | undefined;
  let forget = () => {};
  try {
    const keys = loadKeys(files);
    fs.mkdirSync(path.dirname(repoDir), { recursive: true });
    tmp = makeTempDirBeside(repoDir); // random name, created exclusively: nothing planted beside it is followed
    forget = removeOnInterrupt(tmp);
    fs.chmodSync(tmp, 0o755);
    await writeInitialRevision(tmp, opts, keysDir, keys);
    if (fs.existsSync(repoDir)) fs.rmdirSync(repoDir);
    fs.renameSync(tmp, repoDir);
  } catch (err) {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    dropKeys();
    throw err;
  } finally {
    forget();
  }
  return { dir: repoDir, name: opts.name, keysDir, keysCreated: created, revision: 1, rootHash: readHead(repoDir).manifest.rootHash, publicKey: files.masterPub, garbageCollectable: opts.garbageCollectable === true };
}

/** The repository directory must be absent or an empty real directory (never a symlink). */
function checkNewRepoDir(repoDir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(repoDir);
  } catch {
    return;
  }
  if (st.isSymbolicLink() || !st.isDirectory() || fs.readdirSync(repoDir).length > 0) {
    throw new UsageError(`${repoDir} exists and is not ${st.isSymbolicLink() ? 'a directory (it is a symbolic link)' : 'an empty directory'}`, { where: repoDir, hint: 'init creates a new repository: pick a new or empty directory' });
  }
}

/** Revision 1 (empty root catalog, metainfo, history, reflog, keys' whitelist and manifest) in `dir`. */
async function writeInitialRevision(dir: string, opts: InitOptions, keysDir: string, keys: LoadedKeys): Promise<void> {
  const store = new ObjectStore(dir);
  store.ensureLayout();
  fs.writeFileSync(path.join(dir, '.cvmfs_master_replica'), 'This file marks the repository as replicatable to stratum 1 servers\n');
  const cfg: RepoConfig = { name: opts.name, keysDir, ttl: opts.ttl ?? DEFAULT_TTL, maxFileSize: opts.maxFileSize ?? DEFAULT_MAX_FILE_SIZE, whitelistDays: opts.whitelistDays ?? 30, chunking: checkChunkParams(opts.chunking ?? DEFAULT_CHUNK_PARAMS, 'chunk sizes') };
  fs.mkdirSync(stateDir(dir), { recursive: true });
  if (opts.garbageCollectable === true) cfg.garbageCollectable = true; // `repo init --gc`
  fs.writeFileSync(path.join(stateDir(dir), 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  const now = Math.floor(Date.now() / 1000);
  const root = newDir('', { mode: 0o40755, uid: 0, gid: 0, mtime: now });
  const cat = writeCatalog({ rootPath: '', root, revision: 1, previousRevision: '', lastModified: now, ttl: cfg.ttl, nested: [] });
  const { hash: rootHash } = store.putBuffer(cat.db, 'C');
  const metainfo = putStockZlibObject(store, Buffer.from(METAINFO(opts.name)), 'M');
  const history = History.create(opts.name);
  history.advance({ hash: rootHash, revision: 1, size: cat.db.length, timestamp: now });
  const reflog = Reflog.create(opts.name);
  await writeHead(dir, cfg, keys, { rootHash, rootSize: cat.db.length, revision: 1, history, reflog, newCatalogs: [rootHash], metainfo, timestamp: now });
}

export function readHead(repoDir: string): { manifest: Manifest; raw: Buffer } {
  const file = path.join(repoDir, '.cvmfspublished');
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch {
    throw new UsageError(`${repoDir} is not a repository (no .cvmfspublished)`, { where: repoDir, hint: 'create one with `gridforge repo init <repo-dir> --name <fqrn>`' });
  }
  try {
    return { manifest: parseManifest(raw).manifest, raw };
  } catch (err) {
    throw new GridforgeError(`cannot parse the manifest: ${(err as Error).message}`, { where: file, hint: 'run `gridforge repo verify` to see what is damaged' });
  }
}

function pendingReflog(repoDir: string): string {
  return path.join(stateDir(repoDir), 'reflog.next');
}

/**
 * Roll forward a head that was committed (manifest renamed) but whose reflog was not moved into
 * place yet; drop a reflog of a transaction that never committed. Idempotent.
 */
export function finishPending(repoDir: string): void {
  const next = pendingReflog(repoDir);
  if (!fs.existsSync(next)) return;
  const { manifest } = readHead(repoDir);
  if (manifest.reflog && sha1Hex(fs.readFileSync(next)) === manifest.reflog) fs.renameSync(next, path.join(repoDir, '.cvmfsreflog'));
  else fs.rmSync(next, { force: true });
}

export function pendingReflogMatches(repoDir: string, hash: string): boolean {
  const next = pendingReflog(repoDir);
  return fs.existsSync(next) && sha1Hex(fs.readFileSync(next)) === hash;
}

export function loadRepoKeys(repoDir: string, cfg: RepoConfig): LoadedKeys {
  return loadKeys(keyFiles(cfg.keysDir, cfg.name));
}

export function readReflog(repoDir: string, name: string): Reflog {
  const file = path.join(repoDir, '.cvmfsreflog');
  return fs.existsSync(file) ? Reflog.open(fs.readFileSync(file)) : Reflog.create(name);
}

export function readHistory(store: ObjectStore, manifest: Manifest): History {
  if (!manifest.history) return History.create(manifest.name);
  return History.open(verifyAndInflate(store.readCompressed(manifest.history, 'H'), manifest.history, objectPath(manifest.history, 'H')));
}

/**
 * Store a certificate (X) or meta-info (M) object deflated exactly as stock zlib does: a Stratum-1
 * deflates these two again with its zlib and keeps the name (zlib-exact.mjs says why). Returns the hash.
 */
export function putStockZlibObject(store: ObjectStore, content: Buffer, suffix: 'X' | 'M'): string {
  const compressed = deflateStockZlib(content);
  const hash = sha1Hex(compressed);
  store.storeCompressed(compressed, hash, suffix);
  return hash;
}

/**
 * The meta-info object of the head as a Stratum-1 would store it: a repository published before
 * zlib-exact.mjs has its M object deflated by Node's zlib, which a replica cannot reproduce; it is
 * stored again with stock zlib's bytes (a new name). Unchanged when already exact or unreadable
 * (`repo verify` reports the latter).
 */
export function stockMetainfo(store: ObjectStore, hash: string | undefined): string | undefined {
  if (!hash) return hash;
  let content: Buffer;
  try {
    content = verifyAndInflate(store.readCompressed(hash, 'M'), hash, objectPath(hash, 'M'));
  } catch {
    return hash;
  }
  return putStockZlibObject(store, content, 'M');
}

export interface HeadInput {
  rootHash: string;
  rootSize: number;
  revision: number;
  history: History;
  reflog: Reflog;
  newCatalogs: string[];
  metainfo?: string;
  timestamp: number;
  /** between steps (crash tests): */
  step?: (stage: string) => Promise<void> | void;
}

/**
 * Write a new head. Order: certificate + history objects, pending reflog, whitelist (re-signed),
 * then the manifest by atomic rename (the commit point), then the reflog moved into place.
 */
export async function writeHead(repoDir: string, cfg: RepoConfig, keys: LoadedKeys, h: HeadInput): Promise<Manifest> {
  const store = new ObjectStore(repoDir);
  const cert = putStockZlibObject(store, keys.certPem, 'X');
  const historyHash = store.putBuffer(h.history.serialize(), 'H').hash;
  const metainfo = stockMetainfo(store, h.metainfo);
  for (const c of h.newCatalogs) h.reflog.add(c, 'Catalog', h.timestamp);
  h.reflog.add(cert, 'Certificate', h.timestamp);
  h.reflog.add(historyHash, 'History', h.timestamp);
  if (metainfo) h.reflog.add(metainfo, 'MetaInfo', h.timestamp);
  const reflogBytes = h.reflog.serialize();
  fs.mkdirSync(stateDir(repoDir), { recursive: true });
  const next = pendingReflog(repoDir);
  writeFileAtomic(next, reflogBytes, { mode: 0o644 });
  await h.step?.('whitelist');
  const wl = signWhitelist({ name: cfg.name, fingerprint: certFingerprint(keys.cert), masterKey: keys.masterKey, expires: new Date(Date.now() + cfg.whitelistDays * 86400_000) });
  writeAtomic(path.join(repoDir, '.cvmfswhitelist'), wl);
  const manifest: Manifest = {
    rootHash: h.rootHash,
    rootSize: h.rootSize,
    ttl: cfg.ttl,
    revision: h.revision,
    garbageCollectable: cfg.garbageCollectable === true,
    alternateName: false,
    name: cfg.name,
    certificate: cert,
    history: historyHash,
    timestamp: h.timestamp,
    metainfo,
    reflog: sha1Hex(reflogBytes),
  };
  await h.step?.('manifest');
  writeAtomic(path.join(repoDir, '.cvmfspublished'), signManifest(manifest, keys.repoKey));
  await h.step?.('reflog');
  fs.renameSync(next, path.join(repoDir, '.cvmfsreflog'));
  return manifest;
}

/** Replace `file` durably by rename from a random, exclusively created temporary (base/safe-fs.ts). */
export function writeAtomic(file: string, data: Buffer | string): void {
  writeFileAtomic(file, data, { mode: 0o644, durable: true });
}
