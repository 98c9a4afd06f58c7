/**
 * `repo verify`: every signature (whitelist by the master key, expiry, name, certificate
 * fingerprint; manifest by the certificate), every object hash (catalogs, files, history,
 * certificate, metainfo) and every catalog invariant the cvmfs client and `cvmfs_swissknife check`
 * rely on (schema, properties, md5path and parent keys, flags, link counts, hardlink groups,
 * symlink sizes, statistics counters, nested catalog rows, hash and size in the parent, the
 * `.cvmfscatalog` marker in every nested catalog root and nowhere else), for the
 * current revision and every tagged one (a missing marker only in the current revision: tagged
 * revisions published before markers were added for pattern-nested catalogs cannot change). Each
 * problem names the exact path.
 */
import { checkChunkList } from './chunk-verify.ts';
import type { ChunkParams } from './chunk-params.ts';
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { readCatalog, rowKey, type CatalogRow, type OpenedCatalog } from './catalog.ts';
import { CATALOG_SCHEMA_SQL } from './catalog-schema.ts';
import { COUNTER_NAMES, Flags, SCHEMA_REVISION, SCHEMA_VERSION, md5path, objectPath, zeroCounters, addCounters, type Counters, type ObjectSuffix } from './format.ts';
import { History } from './history.ts';
import { badNameReason, showName } from './catalog-names.ts';
import { findTrustAnchor } from './trust-anchor.ts';
import { checkManifestSignature, parseManifest, type Manifest } from './manifest.ts';
import { sha1Hex } from './object-store.ts';
import { pendingReflogMatches, readRepoConfig } from './repository.ts';
import { Reflog } from './reflog.ts';
import { checkWhitelist, expiryWarning } from './whitelist.ts';

export interface Problem {
  where: string;
  problem: string;
}

export interface VerifyResult {
  ok: boolean;
  repository: string;
  name?: string;
  revision?: number;
  problems: Problem[];
  /** what still works but soon will not (a whitelist expiring within 48 hours); `repo verify --strict` fails on them */
  warnings: Problem[];
  checked: { revisions: number; catalogs: number; objects: number; entries: number };
  whitelistExpires?: string;
}

export interface VerifyOptions {
  publicKey?: string;
  now?: Date;
  /** also check every file object (default true) */
  objects?: boolean;
}

export async function verifyRepository(repoDir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const dir = path.resolve(repoDir);
  const problems: Problem[] = [];
  const add = (where: string, problem: string) => problems.push({ where, problem });
  let chunkBounds: ChunkParams | undefined; // the repository's chunk sizes, when it is one gridforge publishes to
  try {
    chunkBounds = readRepoConfig(dir).chunking;
  } catch {
    chunkBounds = undefined;
  }
  const result: VerifyResult = { ok: false, repository: dir, problems, warnings: [], checked: { revisions: 0, catalogs: 0, objects: 0, entries: 0 } };
  const objectOk = new Map<string, Buffer | null>();
  const readObject = (hash: string, suffix: ObjectSuffix, ref: string, keep = false): Buffer | null => {
    const rel = objectPath(hash, suffix);
    const memo = objectOk.get(rel);
    if (memo !== undefined && (memo !== null || !keep)) return memo;
    result.checked.objects++;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(dir, rel));
    } catch {
      add(rel, `missing object (referenced by ${ref})`);
      objectOk.set(rel, null);
      return null;
    }
    const actual = sha1Hex(bytes);
    if (actual !== hash) {
      add(rel, `content hash mismatch: file hashes to ${actual} (referenced by ${ref})`);
      objectOk.set(rel, null);
      return null;
    }
    let data: Buffer;
    try {
      data = zlib.inflateSync(bytes);
    } catch (err) {
      add(rel, `not a valid zlib stream: ${(err as Error).message} (referenced by ${ref})`);
      objectOk.set(rel, null);
      return null;
    }
    objectOk.set(rel, keep ? data : Buffer.alloc(0));
    return data;
  };

  // manifest
  let manifest: Manifest;
  let signed;
  try {
    const raw = fs.readFileSync(path.join(dir, '.cvmfspublished'));
    ({ manifest, signed } = parseManifest(raw));
  } catch (err) {
    add('.cvmfspublished', (err as Error).message);
    return result;
  }
  result.name = manifest.name;
  result.revision = manifest.revision;

  // keys
  let masterPub: KeyObject | undefined;
  if (opts.publicKey) {
    try {
      masterPub = createPublicKey(fs.readFileSync(opts.publicKey));
    } catch (err) {
      add(opts.publicKey, `cannot read the master public key: ${(err as Error).message}`);
    }
  } else {
    // never a key the repository itself names inside itself (trust-anchor.ts)
    const found = findTrustAnchor(dir, manifest.name);
    masterPub = found.anchor?.key;
    for (const r of found.refused) if (!masterPub) add('.gridforge/config.json', `master public key not trusted: ${r}`);
  }
  if (!masterPub) add('.cvmfswhitelist', 'no master public key to check the whitelist signature (pass --public-key)');

  // certificate + manifest signature
  const certData = readObject(manifest.certificate, 'X', '.cvmfspublished X', true);
  let cert: X509Certificate | undefined;
  if (certData) {
    try {
      cert = new X509Certificate(certData);
    } catch (err) {
      add(objectPath(manifest.certificate, 'X'), `not an X.509 certificate: ${(err as Error).message}`);
    }
  }
  if (cert) {
    const p = checkManifestSignature(signed, cert.publicKey);
    if (p) add('.cvmfspublished', p);
  }

  // whitelist
  try {
    const wl = checkWhitelist(fs.readFileSync(path.join(dir, '.cvmfswhitelist')), masterPub, opts.now);
    for (const p of wl.problems) if (!(p.startsWith('no master public key') && !masterPub)) add('.cvmfswhitelist', p);
    if (wl.info) {
      result.whitelistExpires = wl.info.expires.toISOString();
      const soon = expiryWarning(wl.info, opts.now);
      if (soon) result.warnings.push({ where: '.cvmfswhitelist', problem: soon });
      if (wl.info.name !== manifest.name) add('.cvmfswhitelist', `names repository ${wl.info.name}, the manifest names ${manifest.name}`);
      if (cert && !wl.info.fingerprints.includes(cert.fingerprint.toUpperCase())) add('.cvmfswhitelist', `does not list the certificate fingerprint ${cert.fingerprint}`);
    }
  } catch (err) {
    add('.cvmfswhitelist', (err as Error).message);
  }

  // metainfo, history, reflog
  if (manifest.metainfo) readObject(manifest.metainfo, 'M', '.cvmfspublished M');
  const roots = new Map<string, string>([[manifest.rootHash, `revision ${manifest.revision} (current)`]]);
  if (manifest.history) {
    const h = readObject(manifest.history, 'H', '.cvmfspublished H', true);
    if (h) {
      try {
        const hist = History.open(h);
        for (const t of hist.tags()) if (!roots.has(t.hash)) roots.set(t.hash, `tag ${t.name} (revision ${t.revision})`);
        hist.close();
      } catch (err) {
        add(objectPath(manifest.history, 'H'), `not a history database: ${(err as Error).message}`);
      }
    }
  }
  const reflogFile = path.join(dir, '.cvmfsreflog');
  if (manifest.reflog) {
    if (!fs.existsSync(reflogFile)) {
      if (!pendingReflogMatches(dir, manifest.reflog)) add('.cvmfsreflog', 'missing (the manifest names a reflog)');
    } else {
      const bytes = fs.readFileSync(reflogFile);
      if (sha1Hex(bytes) !== manifest.reflog && !pendingReflogMatches(dir, manifest.reflog)) add('.cvmfsreflog', `hash ${sha1Hex(bytes)} differs from the manifest's Y ${manifest.reflog}`);
      else {
        try {
          const refs = new Set(Reflog.open(sha1Hex(bytes) === manifest.reflog ? bytes : fs.readFileSync(path.join(dir, '.gridforge', 'reflog.next'))).refs().map((r) => r.hash));
          if (!refs.has(manifest.rootHash)) add('.cvmfsreflog', `does not list the current root catalog ${manifest.rootHash}`);
        } catch (err) {
          add('.cvmfsreflog', `not a reflog database: ${(err as Error).message}`);
        }
      }
    }
  }

  // catalogs
  const seenCatalogs = new Set<string>();
  let inCurrent = true; // walking the current revision (set per root below)
  const checkCatalogTree = (hash: string, rootPath: string, ref: string, expectSize?: number, mountRow?: CatalogRow): Counters | undefined => {
    const rel = objectPath(hash, 'C');
    const data = readObject(hash, 'C', ref, true);
    if (!data) return undefined;
    if (expectSize !== undefined && expectSize !== data.length) add(rel, `uncompressed size ${data.length} differs from ${expectSize} recorded by ${ref}`);
    let cat: OpenedCatalog;
    try {
      cat = readCatalog(data);
    } catch (err) {
      add(rel, `not a catalog database: ${(err as Error).message}`);
      return undefined;
    }
    const first = !seenCatalogs.has(hash);
    seenCatalogs.add(hash);
    const where = `${rel} (catalog ${rootPath || '/'})`;
    const nestedTotals = zeroCounters();
    if (mountRow) {
      const k = md5path(rootPath);
      const own = cat.rows.find((r) => r.md5path_1 === k[0] && r.md5path_2 === k[1]);
      if (own) {
        const diff = (['hardlinks', 'mode', 'uid', 'gid', 'mtime', 'name'] as const).filter((f) => own[f] !== mountRow[f]);
        if (diff.length) add(`${rootPath} in ${rel}`, `nested catalog root differs from its mountpoint in the parent catalog (${diff.join(', ')})`);
      }
    }
    for (const n of cat.nested) {
      const k = md5path(n.path);
      const mrow = cat.rows.find((r) => r.md5path_1 === k[0] && r.md5path_2 === k[1]);
      const t = checkCatalogTree(n.hash, n.path, `nested_catalogs row ${n.path} in ${rel}`, n.size, mrow);
      if (t) addCounters(nestedTotals, t);
    }
    if (first) {
      result.checked.catalogs++;
      checkCatalogInvariants(cat, rootPath, where, add, (fileHash, p, chunkSize) => {
        if (opts.objects === false) return;
        const data = readObject(fileHash, chunkSize === undefined ? '' : 'P', p);
        // a chunk object read the first time (later reads are memoised as empty) must hold its chunk's bytes
        if (chunkSize !== undefined && data && data.length > 0 && data.length !== chunkSize) add(objectPath(fileHash, 'P'), `inflates to ${data.length} bytes, the chunk of ${p} is ${chunkSize}`);
      }, { markerRequired: inCurrent, chunkBounds });
      result.checked.entries += cat.rows.length;
      for (const n of COUNTER_NAMES) {
        if ((cat.statistics[`subtree_${n}`] ?? -1) !== nestedTotals[n]) add(where, `statistics subtree_${n} = ${cat.statistics[`subtree_${n}`]}, nested catalogs sum to ${nestedTotals[n]}`);
      }
    }
    const total = zeroCounters();
    for (const n of COUNTER_NAMES) total[n] = (cat.statistics[`self_${n}`] ?? 0) + (cat.statistics[`subtree_${n}`] ?? 0);
    return total;
  };
  for (const [hash, label] of roots) {
    result.checked.revisions++;
    inCurrent = hash === manifest.rootHash;
    checkCatalogTree(hash, '', label);
  }
  result.ok = problems.length === 0;
  return result;
}

/** The file that marks a nested catalog root (swissknife_check.cc: required there, "abandoned" anywhere else). */
const MARKER = '.cvmfscatalog';

/** A `.cvmfscatalog` row in directory `dir` of the catalog rooted at `rootPath`: only in that root, and a regular file. */
function checkMarker(row: CatalogRow, dir: string, rootPath: string, at: string, add: (w: string, p: string) => void): void {
  if (dir !== rootPath) add(at, `${MARKER} marker outside a catalog root (cvmfs_swissknife check: "abandoned nested catalog marker"); ${dir} is not a nested catalog`);
  const flags = Number(row.flags);
  if (!(flags & Flags.File) || flags & (Flags.Dir | Flags.Link | Flags.Special)) add(at, `${MARKER} marker is not a regular file (flags ${flags})`);
}

function key(a: bigint, b: bigint): string {
  return `${a}:${b}`;
}

/**
 * Invariants of one catalog; `onFile` is called for every file object hash. `markerRequired`
 * (default true): a nested catalog without its `.cvmfscatalog` marker is a problem.
 */
export function checkCatalogInvariants(cat: OpenedCatalog, rootPath: string, where: string, add: (w: string, p: string) => void, onFile: (hash: string, path: string, chunkSize?: number) => void, opts: { markerRequired?: boolean; chunkBounds?: ChunkParams } = {}): void {
  const expectSchema = [...CATALOG_SCHEMA_SQL].sort();
  const schema = [...cat.schemaSql].sort();
  if (JSON.stringify(schema) !== JSON.stringify(expectSchema)) add(where, 'schema SQL differs from cvmfs schema 2.5 revision 7');
  if (cat.properties.schema !== SCHEMA_VERSION) add(where, `property schema = ${cat.properties.schema}, expected ${SCHEMA_VERSION}`);
  if (cat.properties.schema_revision !== SCHEMA_REVISION) add(where, `property schema_revision = ${cat.properties.schema_revision}, expected ${SCHEMA_REVISION}`);
  for (const p of ['revision', 'last_modified', 'previous_revision']) if (cat.properties[p] === undefined) add(where, `property ${p} missing`);
  if (rootPath !== '' && cat.properties.root_prefix !== rootPath) add(where, `property root_prefix = ${cat.properties.root_prefix}, expected ${rootPath}`);
  if (rootPath === '' && cat.properties.TTL === undefined) add(where, 'root catalog has no TTL property');
  for (const n of COUNTER_NAMES) for (const p of ['self', 'subtree']) if (cat.statistics[`${p}_${n}`] === undefined) add(where, `statistics ${p}_${n} missing`);

  const byKey = new Map<string, CatalogRow>();
  for (const r of cat.rows) byKey.set(key(r.md5path_1, r.md5path_2), r);
  const rootKey = md5path(rootPath);
  const rootRow = byKey.get(key(rootKey[0], rootKey[1]));
  if (!rootRow) {
    add(where, `no row for the catalog root ${rootPath || '/'} (md5path key)`);
    return;
  }
  const children = new Map<string, CatalogRow[]>();
  for (const r of cat.rows) {
    if (r === rootRow) continue;
    const k = key(r.parent_1, r.parent_2);
    const list = children.get(k) ?? [];
    list.push(r);
    children.set(k, list);
  }
  const self = zeroCounters();
  const chunkedKeys = new Set<string>();
  const mountpoints = new Set<string>();
  const visited = new Set<CatalogRow>();
  const visit = (row: CatalogRow, p: string) => {
    visited.add(row);
    const flags = Number(row.flags);
    const k = md5path(p);
    const rp = p || '/';
    if (k[0] !== row.md5path_1 || k[1] !== row.md5path_2) add(`${rp} in ${where}`, 'md5path key does not match the path');
    const isDir = (flags & Flags.Dir) !== 0;
    const isLink = (flags & Flags.Link) !== 0;
    const isFile = (flags & Flags.File) !== 0;
    if (isDir) self.dir++;
    else if (isLink) self.symlink++;
    else if (flags & Flags.Special) self.special++;
    else if (isFile) {
      self.regular++;
      self.file_size += Number(row.size);
    }
    if (row.xattr && row.xattr.length > 0) self.xattr++;
    if ([isDir, isFile].filter(Boolean).length !== 1) add(`${rp} in ${where}`, `flags ${flags} are neither a directory nor a file`);
    if (isLink && BigInt(Buffer.byteLength(row.symlink ?? '')) !== row.size) add(`${rp} in ${where}`, `symlink size ${row.size} differs from the target length ${Buffer.byteLength(row.symlink ?? '')}`);
    if (isFile && !isLink && !(flags & Flags.Special)) {
      if (flags & Flags.Chunked) {
        // a chunked file: NULL hash (no bulk object, as cvmfs_server 2.12 writes it), the chunks table holds its content
        self.chunked++;
        self.chunked_size += Number(row.size);
        const list = cat.chunks.get(rowKey(row));
        self.chunks += list?.length ?? 0;
        chunkedKeys.add(rowKey(row));
        checkChunkList(list, Number(row.size), `${rp} in ${where}`, add, (h, size) => onFile(h, rp, size), opts.chunkBounds);
      } else if (!row.hash || row.hash.length !== 20) add(`${rp} in ${where}`, 'regular file without a 20-byte content hash');
      else onFile(row.hash.toString('hex'), rp);
    }
    const mode = Number(row.mode);
    const modeType = mode & 0o170000;
    if (isDir && modeType !== 0o040000) add(`${rp} in ${where}`, `directory with mode ${mode.toString(8)}`);
    if (isLink && modeType !== 0o120000) add(`${rp} in ${where}`, `symlink with mode ${mode.toString(8)}`);
    const isMount = (flags & Flags.NestedMountpoint) !== 0 && (flags & Flags.NestedRoot) === 0;
    if (isMount) {
      mountpoints.add(p);
      return;
    }
    if (!isDir) return;
    const kids = children.get(key(row.md5path_1, row.md5path_2)) ?? [];
    const subdirs = kids.filter((c) => Number(c.flags) & Flags.Dir).length;
    if (BigInt.asUintN(32, row.hardlinks) !== BigInt(2 + subdirs)) add(`${rp} in ${where}`, `directory link count ${BigInt.asUintN(32, row.hardlinks)}, expected ${2 + subdirs}`);
    const groups = new Map<bigint, { count: bigint; n: number; hash: string }>();
    const names = new Set<string>();
    for (const c of kids) {
      const badName = badNameReason(c.name);
      if (badName) {
        add(`${p}/${showName(c.name)} in ${where}`, `${badName}: a catalog entry must be one path component (a forged or corrupt catalog; do not check it out)`);
        visited.add(c);
        continue;
      }
      if (names.has(c.name)) add(`${p}/${c.name} in ${where}`, 'duplicate name');
      if (c.name === MARKER) checkMarker(c, p, rootPath, `${p}/${c.name} in ${where}`, add);
      names.add(c.name);
      const hl = BigInt.asUintN(64, c.hardlinks);
      const g = hl >> 32n;
      if (g > 0n && !(Number(c.flags) & Flags.Dir)) {
        const e = groups.get(g) ?? { count: hl & 0xffffffffn, n: 0, hash: c.hash?.toString('hex') ?? '' };
        e.n++;
        if (e.hash !== (c.hash?.toString('hex') ?? '')) add(`${p}/${c.name} in ${where}`, `hardlink group ${g} members differ in content`);
        groups.set(g, e);
      }
      visit(c, `${p}/${c.name}`);
    }
    for (const [g, e] of groups) if (BigInt(e.n) !== e.count) add(`${rp} in ${where}`, `hardlink group ${g} has ${e.n} names, link count says ${e.count}`);
  };
  if (rootPath !== '' && !(Number(rootRow.flags) & Flags.NestedRoot)) add(`${rootPath} in ${where}`, 'nested catalog root row lacks the nested-root flag (32)');
  visit(rootRow, rootPath);
  const rootKids = children.get(key(rootRow.md5path_1, rootRow.md5path_2)) ?? [];
  if (rootPath !== '' && opts.markerRequired !== false && !rootKids.some((c) => c.name === MARKER)) {
    add(`${rootPath} in ${where}`, `nested catalog root without its ${MARKER} marker (cvmfs_swissknife check: "nested catalog without marker"); publishing anything below ${rootPath} again adds it`);
  }
  for (const r of cat.rows) if (!visited.has(r)) add(`${showName(r.name)} in ${where}`, 'row is not reachable from the catalog root (bad parent key)');
  for (const k of cat.chunks.keys()) if (!chunkedKeys.has(k)) add(where, `chunks table rows for key ${k}, which is not a chunked file (flag 64) of this catalog`);
  const nestedPaths = new Set(cat.nested.map((n) => n.path));
  for (const m of mountpoints) if (!nestedPaths.has(m)) add(`${m} in ${where}`, 'nested mountpoint without a nested_catalogs row');
  for (const n of nestedPaths) if (!mountpoints.has(n)) add(`${n} in ${where}`, 'nested_catalogs row without a mountpoint entry');
  self.nested = cat.nested.length;
  for (const n of COUNTER_NAMES) {
    if (n.startsWith('external')) continue;
    if ((cat.statistics[`self_${n}`] ?? -1) !== self[n]) add(where, `statistics self_${n} = ${cat.statistics[`self_${n}`]}, counted ${self[n]}`);
  }
}
