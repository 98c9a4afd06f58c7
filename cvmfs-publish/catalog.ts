/**
 * Catalog stage: turns the entries of one catalog into a CernVM-FS SQLite catalog (schema 2.5
 * revision 7) in memory and serialises it; reads catalogs back into entries. One catalog per
 * nested-catalog root; rows, flags, link counts, hardlink groups and counters as cvmfs writes them.
 */
import Database from 'better-sqlite3';
import { CATALOG_SCHEMA_SQL } from './catalog-schema.ts';
import { COMPRESSION_SHIFT, COUNTER_NAMES, DEFAULT_TTL, Flags, HASH_ALGO_SHIFT, NULL_HASH, SCHEMA_REVISION, SCHEMA_VERSION, addCounters, md5path, zeroCounters, type Counters } from './format.ts';
import type { Entry } from './entry.ts';
import { decodeXattrs, encodeXattrs } from './xattr.ts';

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
}

export interface CatalogWriteResult {
  db: Buffer;
  self: Counters;
  subtree: Counters;
  entries: number;
}

function typeFlags(e: Entry): number {
  switch (e.type) {
    case 'dir':
      return Flags.Dir;
    case 'file':
      return Flags.File | (0 << HASH_ALGO_SHIFT) | (0 << COMPRESSION_SHIFT);
    case 'symlink':
      return Flags.File | Flags.Link;
    default:
      return Flags.File | Flags.Special;
  }
}

function subdirCount(e: Entry): number {
  let n = 0;
  for (const c of e.children!.values()) if (c.type === 'dir') n++;
  return n;
}

/** Write one catalog. Children that are nested roots become mountpoint rows and are not descended. */
export function writeCatalog(input: CatalogWriteInput): CatalogWriteResult {
  const db = new Database(':memory:');
  db.pragma('page_size = 1024');
  for (const sql of CATALOG_SCHEMA_SQL) db.exec(sql);
  const insert = db.prepare(
    'INSERT INTO catalog (md5path_1, md5path_2, parent_1, parent_2, hardlinks, hash, size, mode, mtime, mtimens, flags, name, symlink, uid, gid, xattr) VALUES (?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,?)',
  );
  const self = zeroCounters();
  let entries = 0;
  let hlNext = 1;
  // Rows are collected first so hardlink counts are patched in memory, not by UPDATEs.
  // hardlinks ((group << 32) | count) stays below 2^53: a plain number binds faster than a bigint
  type Row = [bigint, bigint, bigint, bigint, number, Buffer | null, number, number, number, number, string, string | undefined, number, number, Buffer | null];
  const rows: Row[] = [];
  const addRow = (e: Entry, path: string, parentKey: [bigint, bigint], extraFlags: number): Row => {
    const key = md5path(path);
    let hardlinks = 1;
    const xattr = encodeXattrs(e.xattrs);
    if (e.type === 'dir') {
      hardlinks = e.unloaded && e.links ? e.links : 2 + subdirCount(e);
      self.dir++;
    } else if (e.type === 'file') {
      self.regular++;
      self.file_size += e.size;
    } else if (e.type === 'symlink') self.symlink++;
    else self.special++;
    if (xattr) self.xattr++;
    if (e.type === 'file' && e.hlGroup) hardlinks = e.hlGroup * 2 ** 32 + 1; // count patched by caller
    const row: Row = [
      key[0], key[1], parentKey[0], parentKey[1], hardlinks,
      e.type === 'file' ? Buffer.from(e.hash!, 'hex') : null,
      e.type === 'symlink' ? Buffer.byteLength(e.target ?? '', 'utf8') : e.type === 'dir' ? 4096 : e.size,
      e.mode, e.mtime, typeFlags(e) | extraFlags, e.name, e.type === 'symlink' ? e.target : '', e.uid, e.gid, xattr,
    ];
    rows.push(row);
    entries++;
    return row;
  };
  const walk = (dir: Entry, path: string, key: [bigint, bigint]) => {
    // hardlink groups: renumber per catalog, count names per group within this directory
    const groups = new Map<number, Entry[]>();
    for (const c of dir.children!.values()) {
      if (c.type === 'file' && c.hlGroup) {
        const g = groups.get(c.hlGroup) ?? [];
        g.push(c);
        groups.set(c.hlGroup, g);
      }
    }
    const groupMap = new Map<number, number>();
    for (const [g, members] of groups) if (members.length > 1) groupMap.set(g, hlNext++);
    for (const c of dir.children!.values()) {
      const cpath = `${path}/${c.name}`;
      const saved = c.hlGroup;
      if (c.type === 'file' && saved) c.hlGroup = groupMap.get(saved) ?? 0;
      if (c.type === 'dir' && c.nested) {
        addRow(c, cpath, key, Flags.NestedMountpoint);
      } else {
        const row = addRow(c, cpath, key, 0);
        if (c.type === 'file' && c.hlGroup) row[4] = c.hlGroup * 2 ** 32 + groups.get(saved!)!.length;
        if (c.type === 'dir') walk(c, cpath, [row[0], row[1]]);
      }
      if (c.type === 'file') c.hlGroup = saved;
    }
  };
  const subtree = zeroCounters();
  for (const n of input.nested) addCounters(subtree, n.total);
  db.transaction(() => {
    const rootKey = md5path(input.rootPath);
    const parentKey: [bigint, bigint] = input.rootPath === '' ? [0n, 0n] : md5path(input.rootPath.slice(0, input.rootPath.lastIndexOf('/')));
    addRow(input.root, input.rootPath, parentKey, input.rootPath === '' ? 0 : Flags.NestedRoot);
    walk(input.root, input.rootPath, rootKey);
    for (const r of rows) insert.run(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14]);
    const nestedIns = db.prepare('INSERT INTO nested_catalogs (path, sha1, size) VALUES (?,?,?)');
    for (const n of input.nested) nestedIns.run(n.path, n.hash, n.size);
    self.nested = input.nested.length;
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
  const buf = db.serialize();
  db.close();
  return { db: buf, self, subtree, entries };
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
  schemaSql: string[];
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
    const schemaSql = (db.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").all() as { sql: string }[]).map((r) => r.sql);
    return { properties, statistics, nested, rows, schemaSql };
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
      hash: row.hash ? row.hash.toString('hex') : undefined,
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
