/**
 * Row image of a catalog: every row the catalog stage writes, as one fixed-size record in a flat
 * buffer (key, numeric columns, content hash, a digest of the symlink target and xattrs). Built
 * from the entry tree in the walk order of a full build, kept beside the repository after a
 * publish, and compared record by record with the image of the next build: only rows whose record
 * differs are written into the previous catalog (see catalog.ts). Comparing two 50,000-row images
 * takes milliseconds; inserting 50,000 rows into SQLite takes a few hundred.
 */
import { Flags, md5path, zeroCounters, type Counters } from './format.ts';
import { md5Words } from './md5.ts';
import type { Entry } from './entry.ts';
import { encodeXattrs } from './xattr.ts';

/**
 * 32-bit words per row: 0-3 md5path key, 4-5 hardlinks, 6-7 size, 8-9 mtime (float64), 10 mode,
 * 11 flags, 12 uid, 13 gid, 14-18 content hash (zero for a chunked file), 19-22 MD5 of symlink
 * target + xattr blob + chunk list (offsets, sizes, objects: a changed chunk list is a changed row), 23 unused.
 */
export const ROW_WORDS = 24;
const ROW_BYTES = ROW_WORDS * 4;
const F64 = ROW_WORDS / 2;
const HASH_BYTE = 14 * 4;
const EXTRA_WORD = 19;
const MAGIC = Buffer.from('GFROWS1\0');
const HEADER = 16;

/** The 16 catalog columns of one row as better-sqlite3 binds them (mtimens is always NULL). */
export type RowValues = [bigint, bigint, bigint, bigint, number, Buffer | null, number, number, number, number, string, string, number, number, Buffer | null];

export class RowImage {
  count = 0;
  private u32!: Uint32Array;
  private f64!: Float64Array;
  private i64!: BigInt64Array;
  private bytes!: Buffer;
  /** entries and parent rows, kept only for an image built in this process (to produce SQL values) */
  readonly entries: Entry[] = [];
  private parents: Int32Array;
  /** key of the parent of the catalog's root row (the row outside this catalog) */
  rootParent: [bigint, bigint] = [0n, 0n];

  /** Room for `capacity` rows, starting with the row bytes `from` (an image file's rows). */
  constructor(capacity = 1024, from?: Buffer) {
    this.setRows(capacity, from);
    this.parents = new Int32Array(from ? 0 : capacity);
  }

  /** Row storage for `capacity` rows holding `from` at its start; views of one buffer. */
  private setRows(capacity: number, from?: Uint8Array): void {
    const buf = new ArrayBuffer(capacity * ROW_BYTES);
    if (from) new Uint8Array(buf).set(from);
    this.u32 = new Uint32Array(buf);
    this.f64 = new Float64Array(buf);
    this.i64 = new BigInt64Array(buf);
    this.bytes = Buffer.from(buf);
  }

  private grow(): void {
    this.setRows(this.count * 2, this.bytes.subarray(0, this.count * ROW_BYTES));
    const parents = new Int32Array(this.count * 2);
    parents.set(this.parents);
    this.parents = parents;
  }

  /** Append a row; returns its index. */
  add(e: Entry, path: string, parent: number, hardlinks: number, flags: number, xattr: Buffer | null): number {
    if (this.count * ROW_BYTES >= this.bytes.length) this.grow();
    const i = this.count++;
    const w = i * ROW_WORDS;
    const u32 = this.u32;
    u32.set(md5Words(path), w);
    const f = i * F64;
    this.f64[f + 2] = hardlinks;
    this.f64[f + 3] = e.type === 'symlink' ? Buffer.byteLength(e.target ?? '', 'utf8') : e.type === 'dir' ? 4096 : e.size;
    this.f64[f + 4] = e.mtime;
    u32[w + 10] = e.mode;
    u32[w + 11] = flags;
    u32[w + 12] = e.uid;
    u32[w + 13] = e.gid;
    if (e.type === 'file' && !e.chunks) this.bytes.write(e.hash!, i * ROW_BYTES + HASH_BYTE, 20, 'hex');
    else u32.fill(0, w + 14, w + 19);
    const chunkList = e.type === 'file' && e.chunks ? e.chunks.map((c) => `${c.offset} ${c.size} ${c.hash}`).join('\n') : '';
    if (xattr || (e.type === 'symlink' && e.target) || chunkList) u32.set(md5Words(`${e.target ?? ''}\0${xattr ? xattr.toString('latin1') : ''}\0${chunkList}`), w + EXTRA_WORD);
    else u32.fill(0, w + EXTRA_WORD, w + EXTRA_WORD + 4);
    u32[w + 23] = 0;
    this.entries.push(e);
    this.parents[i] = parent;
    return i;
  }

  /** Patch the hardlinks column of a row already added. */
  setHardlinks(i: number, hardlinks: number): void {
    this.f64[i * F64 + 2] = hardlinks;
  }

  key(i: number): [bigint, bigint] {
    return [this.i64[i * F64], this.i64[i * F64 + 1]];
  }

  sameKey(i: number, other: RowImage, j: number): boolean {
    const a = this.u32;
    const b = other.u32;
    const w = i * ROW_WORDS;
    const v = j * ROW_WORDS;
    return a[w] === b[v] && a[w + 1] === b[v + 1] && a[w + 2] === b[v + 2] && a[w + 3] === b[v + 3];
  }

  /** Every column of row i equals every column of row j of `other` (key included). */
  sameRow(i: number, other: RowImage, j: number): boolean {
    const a = this.u32;
    const b = other.u32;
    const w = i * ROW_WORDS;
    const v = j * ROW_WORDS;
    for (let k = 0; k < ROW_WORDS; k++) if (a[w + k] !== b[v + k]) return false;
    return true;
  }

  /** 53 bits of the key, for a lookup table (collisions are checked with sameKey). */
  shortKey(i: number): number {
    return this.u32[i * ROW_WORDS] + (this.u32[i * ROW_WORDS + 1] & 0x1fffff) * 2 ** 32;
  }

  /** The catalog columns of row i (an image built in this process only). */
  values(i: number): RowValues {
    const e = this.entries[i];
    const f = i * F64;
    const p = this.parents[i];
    const parent = p < 0 ? this.rootParent : this.key(p);
    const off = i * ROW_BYTES + HASH_BYTE;
    return [
      this.i64[f], this.i64[f + 1], parent[0], parent[1], this.f64[f + 2],
      e.type === 'file' && !e.chunks ? Buffer.from(this.bytes.subarray(off, off + 20)) : null,
      this.f64[f + 3], e.mode, e.mtime, this.u32[i * ROW_WORDS + 11], e.name, e.type === 'symlink' ? (e.target ?? '') : '', e.uid, e.gid, encodeXattrs(e.xattrs),
    ];
  }

  /** The image as a file: magic, row count, rows. */
  serialize(): Buffer {
    const head = Buffer.alloc(HEADER);
    MAGIC.copy(head);
    head.writeUInt32LE(this.count, 8);
    head.writeUInt32LE(ROW_WORDS, 12);
    return Buffer.concat([head, this.bytes.subarray(0, this.count * ROW_BYTES)]);
  }

  /** Read an image file; undefined if it is not one this version writes. */
  static parse(file: Buffer): RowImage | undefined {
    if (file.length < HEADER || !file.subarray(0, 8).equals(MAGIC) || file.readUInt32LE(12) !== ROW_WORDS) return undefined;
    const count = file.readUInt32LE(8);
    if (file.length !== HEADER + count * ROW_BYTES) return undefined;
    const img = new RowImage(Math.max(count, 1), file.subarray(HEADER));
    img.count = count;
    return img;
  }
}

function typeFlags(e: Entry): number {
  switch (e.type) {
    case 'dir':
      return Flags.Dir;
    case 'file':
      // hash algorithm 0 (SHA-1) in bits 8-10, compression 0 (zlib) in bits 11-13; 68 for a chunked file
      return e.chunks ? Flags.File | Flags.Chunked : Flags.File;
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

/**
 * The rows of the catalog rooted at `root` (path `rootPath`: '' for the root catalog), in the order
 * a full build inserts them, with the catalog's own counters. Children that are nested roots become
 * mountpoint rows and are not descended. Hardlink groups are renumbered per catalog.
 */
export function buildRowImage(rootPath: string, root: Entry): { image: RowImage; self: Counters } {
  const image = new RowImage(4096);
  const self = zeroCounters();
  let hlNext = 1;
  const add = (e: Entry, path: string, parent: number, extraFlags: number, hardlinks: number): number => {
    const xattr = encodeXattrs(e.xattrs);
    if (e.type === 'dir') self.dir++;
    else if (e.type === 'file') {
      self.regular++;
      self.file_size += e.size;
      if (e.chunks) {
        // cvmfs/catalog_counters.cc ApplyDelta, catalog_rw.cc AddFileChunk
        self.chunked++;
        self.chunked_size += e.size;
        self.chunks += e.chunks.length;
      }
    } else if (e.type === 'symlink') self.symlink++;
    else self.special++;
    if (xattr) self.xattr++;
    return image.add(e, path, parent, hardlinks, typeFlags(e) | extraFlags, xattr);
  };
  const dirLinks = (d: Entry) => (d.unloaded && d.links ? d.links : 2 + subdirCount(d));
  const walk = (dir: Entry, path: string, row: number) => {
    // hardlink groups: renumber per catalog, count names per group within this directory
    let groups: Map<number, number> | undefined;
    for (const c of dir.children!.values()) {
      if (c.type === 'file' && c.hlGroup) {
        groups ??= new Map();
        groups.set(c.hlGroup, (groups.get(c.hlGroup) ?? 0) + 1);
      }
    }
    let renumbered: Map<number, number> | undefined;
    if (groups) {
      renumbered = new Map();
      for (const [g, n] of groups) if (n > 1) renumbered.set(g, hlNext++);
    }
    for (const c of dir.children!.values()) {
      const cpath = `${path}/${c.name}`;
      if (c.type === 'dir') {
        const i = add(c, cpath, row, c.nested ? Flags.NestedMountpoint : 0, dirLinks(c));
        if (!c.nested) walk(c, cpath, i);
      } else if (c.type === 'file' && c.hlGroup && renumbered!.has(c.hlGroup)) {
        add(c, cpath, row, 0, renumbered!.get(c.hlGroup)! * 2 ** 32 + groups!.get(c.hlGroup)!);
      } else add(c, cpath, row, 0, 1);
    }
  };
  image.rootParent = rootPath === '' ? [0n, 0n] : md5path(rootPath.slice(0, rootPath.lastIndexOf('/')));
  const top = add(root, rootPath, -1, rootPath === '' ? 0 : Flags.NestedRoot, dirLinks(root));
  walk(root, rootPath, top);
  return { image, self };
}

export interface RowChanges {
  /** rows of the new image to insert */
  insert: number[];
  /** rows of the new image whose columns changed */
  update: number[];
  /** rows of the old image to delete */
  remove: number[];
}

/**
 * The rows that turn the catalog of `old` into the catalog of `cur`. Both images come in walk
 * order, so unchanged trees match record by record; where they fall out of step (entries added or
 * removed) a key table of `old` is built once. Undefined when two keys of `old` share a table
 * slot and cannot be told apart (the caller then writes the catalog in full).
 */
export function diffRows(old: RowImage, cur: RowImage): RowChanges | undefined {
  const changes: RowChanges = { insert: [], update: [], remove: [] };
  const matched = new Uint8Array(old.count);
  let table: Map<number, number> | undefined;
  let j = 0;
  for (let i = 0; i < cur.count; i++) {
    let k = -1;
    if (j < old.count && cur.sameKey(i, old, j)) k = j;
    else {
      if (!table) {
        table = new Map();
        for (let o = 0; o < old.count; o++) {
          const s = old.shortKey(o);
          if (table.has(s)) return undefined;
          table.set(s, o);
        }
      }
      const o = table.get(cur.shortKey(i));
      if (o !== undefined && cur.sameKey(i, old, o)) k = o;
    }
    if (k < 0 || matched[k]) {
      changes.insert.push(i);
      continue;
    }
    matched[k] = 1;
    if (!cur.sameRow(i, old, k)) changes.update.push(i);
    j = k + 1;
  }
  for (let o = 0; o < old.count; o++) if (!matched[o]) changes.remove.push(o);
  return changes;
}
