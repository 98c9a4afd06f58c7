/**
 * Catalog stage: turns the entries of one catalog into a CernVM-FS SQLite catalog (schema 2.5
 * revision 7) in memory and serialises it; reads catalogs back into entries. One catalog per
 * nested-catalog root; rows, flags, link counts, hardlink groups and counters as cvmfs writes them.
 */
import Database from 'better-sqlite3';
import { CATALOG_SCHEMA_SQL } from './catalog-schema.ts';
import { newCvmfsDatabase } from './sqlite-db.ts';
import { buildRowImage, diffRows, type RowImage } from './catalog-image.ts';
import { COUNTER_NAMES, DEFAULT_TTL, Flags, NULL_HASH, SCHEMA_REVISION, SCHEMA_VERSION, addCounters, md5path, zeroCounters, type Counters } from './format.ts';
import type { Entry } from './entry.ts';
import { decodeXattrs } from './xattr.ts';

export interface NestedRow {
  path: string;
  hash: string;
  size: number;
}

export interface CatalogWriteInput {
  /** '' for the root catalog, '/a/b' for nested ones */
  rootPath: string;
  root: Entry;
  revision: number;
  previousRevision: string;
  lastModified: number;
  ttl?: number;
  /** nested catalogs directly below, already written */
  nested: (NestedRow & { total: Counters })[];
  /** the rows, if already built (buildRowImage of rootPath and root) */
  rows?: { image: RowImage; self: Counters };
  /** the previous catalog of this path and its row image: only the rows that differ are written into it */
  base?: CatalogBase;
}

export interface CatalogBase {
  /** the previous catalog, uncompressed */
  db: Buffer;
  image: RowImage;
}

export interface CatalogWriteResult {
  db: Buffer;
  self: Counters;
  subtree: Counters;
  entries: number;
  /** the rows written, to be kept as the base of the next write */
  image: RowImage;
  /** written by patching the base (false: built from scratch) */
  patched: boolean;
}

const INSERT_ROW = 'INSERT INTO catalog (md5path_1, md5path_2, parent_1, parent_2, hardlinks, hash, size, mode, mtime, mtimens, flags, name, symlink, uid, gid, xattr) VALUES (?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,?)';

const INSERT_CHUNK = 'INSERT INTO chunks (md5path_1, md5path_2, offset, size, hash) VALUES (?,?,?,?,?)';

/** The chunks table rows of row i of the image (a chunked file), after its catalog row, as cvmfs_server adds them (catalog_rw.cc AddFileChunk). */
function insertChunks(insert: Database.Statement, image: RowImage, i: number): void {
  const chunks = image.entries[i].chunks;
  if (!chunks) return;
  const [k1, k2] = image.key(i);
  for (const c of chunks) insert.run(k1, k2, c.offset, c.size, Buffer.from(c.hash, 'hex'));
}

/** A new catalog holding every row of the image. */
function freshCatalog(image: RowImage): Database.Database {
  const db = newCvmfsDatabase(CATALOG_SCHEMA_SQL);
  const insert = db.prepare(INSERT_ROW);
  const insertChunk = db.prepare(INSERT_CHUNK);
  db.transaction(() => {
    for (let i = 0; i < image.count; i++) {
      insert.run(image.values(i));
      insertChunks(insertChunk, image, i);
    }
  })();
  return db;
}

/**
 * The base catalog with the rows that differ from the image deleted, updated or inserted; undefined
 * when a full build is the better choice (most rows changed, the base does not match its image, or
 * the deletions would leave a quarter of the pages free).
 */
function patchedCatalog(base: CatalogBase, image: RowImage): Database.Database | undefined {
  const changes = diffRows(base.image, image);
  if (!changes) return undefined;
  if ((changes.insert.length + changes.update.length + changes.remove.length) * 2 > image.count) return undefined;
  const db = new Database(base.db);
  try {
    if (Number(db.prepare('SELECT count(*) FROM catalog').pluck().get()) !== base.image.count) {
      db.close();
      return undefined;
    }
    const remove = db.prepare('DELETE FROM catalog WHERE md5path_1 = ? AND md5path_2 = ?');
    const update = db.prepare(
      'UPDATE catalog SET parent_1 = ?, parent_2 = ?, hardlinks = ?, hash = ?, size = ?, mode = ?, mtime = ?, flags = ?, name = ?, symlink = ?, uid = ?, gid = ?, xattr = ? WHERE md5path_1 = ? AND md5path_2 = ?',
    );
    const insert = db.prepare(INSERT_ROW);
    // a removed or changed row's chunk list goes with it (a no-op for unchunked files)
    const removeChunks = db.prepare('DELETE FROM chunks WHERE md5path_1 = ? AND md5path_2 = ?');
    const insertChunk = db.prepare(INSERT_CHUNK);
    db.transaction(() => {
      for (const o of changes.remove) {
        remove.run(base.image.key(o));
        removeChunks.run(base.image.key(o));
      }
      for (const i of changes.update) {
        const v = image.values(i);
        update.run(...v.slice(2), v[0], v[1]);
        removeChunks.run(image.key(i));
        insertChunks(insertChunk, image, i);
      }
      for (const i of changes.insert) {
        insert.run(image.values(i));
        insertChunks(insertChunk, image, i);
      }
    })();
    if (changes.remove.length > 0 && Number(db.pragma('freelist_count', { simple: true })) * 4 > Number(db.pragma('page_count', { simple: true }))) {
      db.close();
      return undefined;
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Write one catalog: its rows (patched into `base` when given and worth it, else a new database),
 * nested catalog references, properties and the 24 statistics counters, serialised.
 */
export function writeCatalog(input: CatalogWriteInput): CatalogWriteResult {
  const { image, self } = input.rows ?? buildRowImage(input.rootPath, input.root);
  let patched: Database.Database | undefined;
  try {
    patched = input.base && patchedCatalog(input.base, image);
  } catch {
    patched = undefined; // a base that does not take the changes (a damaged image, say): build in full
  }
  const db = patched ?? freshCatalog(image);
  try {
    const subtree = zeroCounters();
    for (const n of input.nested) addCounters(subtree, n.total);
    self.nested = input.nested.length;
    db.transaction(() => {
      if (patched) for (const table of ['nested_catalogs', 'properties', 'statistics']) db.exec(`DELETE FROM ${table}`);
      const nestedIns = db.prepare('INSERT INTO nested_catalogs (path, sha1, size) VALUES (?,?,?)');
      for (const n of input.nested) nestedIns.run(n.path, n.hash, n.size);
      const props = db.prepare('INSERT INTO properties (key, value) VALUES (?,?)');
      if (input.rootPath === '') props.run('TTL', String(input.ttl ?? DEFAULT_TTL));
      props.run('last_modified', String(input.lastModified));
      props.run('previous_revision', input.previousRevision || NULL_HASH);
      props.run('revision', String(input.revision));
      if (input.rootPath !== '') props.run('root_prefix', input.rootPath);
      props.run('schema', SCHEMA_VERSION);
      props.run('schema_revision', SCHEMA_REVISION);
      const stat = db.prepare('INSERT INTO statistics (counter, value) VALUES (?,?)');
      for (const n of COUNTER_NAMES) stat.run(`self_${n}`, self[n]);
      for (const n of COUNTER_NAMES) stat.run(`subtree_${n}`, subtree[n]);
    })();
    return { db: db.serialize(), self, subtree, entries: image.count, image, patched: patched !== undefined };
  } finally {
    db.close();
  }
}

export interface CatalogRow {
  md5path_1: bigint;
  md5path_2: bigint;
  parent_1: bigint;
  parent_2: bigint;
  hardlinks: bigint;
  hash: Buffer | null;
  size: bigint;
  mode: bigint;
  mtime: bigint;
  mtimens: bigint | null;
  flags: bigint;
  name: string;
  symlink: string | null;
  uid: bigint;
  gid: bigint;
  xattr: Buffer | null;
}

export interface OpenedCatalog {
  properties: Record<string, string>;
  statistics: Record<string, number>;
  nested: NestedRow[];
  rows: CatalogRow[];
  /** the chunks table, by row key `md5path_1:md5path_2`, in offset order */
  chunks: Map<string, ChunkRow[]>;
  schemaSql: string[];
}

export interface ChunkRow {
  offset: number;
  size: number;
  /** null or not 20 bytes in a damaged catalog (verify reports it) */
  hash: Buffer | null;
}

/** The key of a catalog row in OpenedCatalog.chunks. */
export function rowKey(row: { md5path_1: bigint; md5path_2: bigint }): string {
  return `${row.md5path_1}:${row.md5path_2}`;
}

/** Open a serialised catalog and read everything (rows with 64-bit integers as bigint). */
export function readCatalog(dbBytes: Buffer): OpenedCatalog {
  const db = new Database(dbBytes, { readonly: true });
  try {
    const properties: Record<string, string> = {};
    for (const r of db.prepare('SELECT key, value FROM properties').all() as { key: string; value: string }[]) properties[r.key] = String(r.value);
    const statistics: Record<string, number> = {};
    for (const r of db.prepare('SELECT counter, value FROM statistics').all() as { counter: string; value: number }[]) statistics[r.counter] = Number(r.value);
    const nested = (db.prepare('SELECT path, sha1, size FROM nested_catalogs').all() as { path: string; sha1: string; size: number }[]).map((r) => ({ path: r.path, hash: r.sha1, size: Number(r.size) }));
    const rows = db.prepare('SELECT * FROM catalog').safeIntegers(true).all() as CatalogRow[];
    const chunks = new Map<string, ChunkRow[]>();
    for (const r of db.prepare('SELECT md5path_1, md5path_2, offset, size, hash FROM chunks ORDER BY md5path_1, md5path_2, offset').safeIntegers(true).all() as { md5path_1: bigint; md5path_2: bigint; offset: bigint; size: bigint; hash: Buffer | null }[]) {
      const k = rowKey(r);
      const list = chunks.get(k) ?? [];
      list.push({ offset: Number(r.offset), size: Number(r.size), hash: Buffer.isBuffer(r.hash) ? r.hash : null });
      chunks.set(k, list);
    }
    const schemaSql = (db.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").all() as { sql: string }[]).map((r) => r.sql);
    return { properties, statistics, nested, rows, chunks, schemaSql };
  } finally {
    db.close();
  }
}

export function countersOf(stats: Record<string, number>, prefix: 'self' | 'subtree'): Counters {
  const c = zeroCounters();
  for (const n of COUNTER_NAMES) c[n] = stats[`${prefix}_${n}`] ?? 0;
  return c;
}

export function totalOf(stats: Record<string, number>): Counters {
  const t = countersOf(stats, 'self');
  addCounters(t, countersOf(stats, 'subtree'));
  return t;
}

function keyOf(a: bigint, b: bigint): string {
  return `${a}:${b}`;
}

/**
 * Build the entry tree of one catalog. Returns the catalog root entry with its children; nested
 * mountpoints come back as `unloaded` directories carrying their catalog reference.
 */
export function entriesFromCatalog(cat: OpenedCatalog, rootPath: string): Entry {
  const byKey = new Map<string, { row: CatalogRow; entry: Entry }>();
  const nestedByPath = new Map(cat.nested.map((n) => [n.path, n]));
  const rootKey = md5path(rootPath);
  let root: Entry | undefined;
  for (const row of cat.rows) {
    const flags = Number(row.flags);
    const type = flags & Flags.Dir ? 'dir' : flags & Flags.Link ? 'symlink' : flags & Flags.Special ? 'special' : 'file';
    const hl = BigInt.asUintN(64, row.hardlinks);
    const e: Entry = {
      name: row.name,
      type,
      mode: Number(row.mode),
      uid: Number(row.uid),
      gid: Number(row.gid),
      mtime: Number(row.mtime),
      size: Number(row.size),
      hash: row.hash && !(flags & Flags.Chunked) ? row.hash.toString('hex') : undefined,
      chunks: type === 'file' && flags & Flags.Chunked ? (cat.chunks.get(rowKey(row)) ?? []).map((c) => ({ offset: c.offset, size: c.size, hash: c.hash?.toString('hex') ?? '', digest: '' })) : undefined,
      target: type === 'symlink' ? row.symlink ?? '' : undefined,
      xattrs: decodeXattrs(row.xattr),
      hlGroup: type === 'file' ? Number(hl >> 32n) : undefined,
    };
    if (type === 'dir') {
      e.children = new Map();
      e.links = Number(hl & 0xffffffffn);
    }
    if (flags & Flags.NestedMountpoint && !(flags & Flags.NestedRoot)) {
      e.nested = true;
      e.unloaded = true;
    }
    byKey.set(keyOf(row.md5path_1, row.md5path_2), { row, entry: e });
    if (row.md5path_1 === rootKey[0] && row.md5path_2 === rootKey[1]) root = e;
  }
  if (!root) throw new Error(`catalog has no row for its root "${rootPath || '/'}"`);
  const pathOf = new Map<Entry, string>();
  pathOf.set(root, rootPath);
  for (const { row, entry } of byKey.values()) {
    if (entry === root) continue;
    const parent = byKey.get(keyOf(row.parent_1, row.parent_2));
    if (!parent || !parent.entry.children) throw new Error(`catalog row "${row.name}" has no parent directory in the catalog`);
    parent.entry.children.set(entry.name, entry);
  }
  // attach nested catalog references by path
  const attach = (dir: Entry, path: string) => {
    for (const c of dir.children!.values()) {
      if (c.type !== 'dir') continue;
      const p = `${path}/${c.name}`;
      if (c.nested) {
        const n = nestedByPath.get(p);
        if (!n) throw new Error(`nested catalog mountpoint ${p} has no nested_catalogs row`);
        c.catalog = { hash: n.hash, size: n.size, revision: 0 };
      } else attach(c, p);
    }
  };
  attach(root, rootPath);
  return root;
}
