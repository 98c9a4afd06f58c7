/**
 * Catalogs written by patching the previous one (only the rows whose row-image record differs)
 * must hold exactly what a full build of the same tree holds: every row, nested reference,
 * property and counter. Each kind of change a publish can make is applied in turn, each patch on
 * top of the one before; then the cases where a full build must be chosen instead.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entriesFromCatalog, readCatalog, writeCatalog, type CatalogBase, type CatalogWriteResult } from '../../cvmfs-publish/catalog.ts';
import { RowImage } from '../../cvmfs-publish/catalog-image.ts';
import { zeroCounters } from '../../cvmfs-publish/format.ts';
import { newDir, type Entry } from '../../cvmfs-publish/entry.ts';

const ROOT = '/sw/tree';
const meta = { mode: 0o40755, uid: 0, gid: 0, mtime: 1_700_000_000 };
const hash = () => randomBytes(20).toString('hex');
const file = (name: string, size = 10): Entry => ({ name, type: 'file', mode: 0o100644, uid: 0, gid: 0, mtime: 1_700_000_000, size, hash: hash() });

function tree(): Entry {
  const root = newDir('tree', meta);
  for (let d = 0; d < 6; d++) {
    const dir = newDir(`d${d}`, meta);
    root.children!.set(dir.name, dir);
    for (let s = 0; s < 3; s++) {
      const sub = newDir(`s${s}`, meta);
      dir.children!.set(sub.name, sub);
      for (let f = 0; f < 20; f++) sub.children!.set(`f${f}`, file(`f${f}`, f * 100));
    }
  }
  const links = root.children!.get('d0')!;
  links.children!.set('link', { name: 'link', type: 'symlink', mode: 0o120777, uid: 0, gid: 0, mtime: 1_700_000_000, size: 3, target: 'aaa' });
  links.children!.set('attrs', { ...file('attrs'), xattrs: { 'user.role': Buffer.from('v1') } });
  links.children!.set('fifo', { name: 'fifo', type: 'special', mode: 0o10644, uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 });
  return root;
}

const at = (root: Entry, ...names: string[]) => names.reduce((e, n) => e.children!.get(n)!, root);

type Nested = Parameters<typeof writeCatalog>[0]['nested'];
function write(root: Entry, base?: CatalogBase, nested: Nested = []): CatalogWriteResult {
  return writeCatalog({ rootPath: ROOT, root, revision: 3, previousRevision: 'ab'.repeat(20), lastModified: 1_700_000_500, nested, base });
}

/** The logical content of a catalog: rows by key, nested references, properties, statistics. */
function content(db: Buffer): string {
  const c = readCatalog(db);
  const rows = c.rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v))).sort();
  return JSON.stringify({ rows, nested: c.nested, properties: c.properties, statistics: c.statistics, count: c.rows.length });
}

describe('catalog patch', () => {
  it('every kind of change, patched on top of the previous patch, equals a full build', () => {
    const root = tree();
    let prev = write(root);
    expect(prev.patched).toBe(false);
    const steps: [string, () => unknown][] = [
      ['file content', () => Object.assign(at(root, 'd1', 's1', 'f3'), { hash: hash(), size: 777 })],
      ['mode, owner', () => Object.assign(at(root, 'd2', 's0', 'f1'), { mode: 0o100755, uid: 1000, gid: 1000 })],
      ['directory mtime', () => Object.assign(at(root, 'd3'), { mtime: 1_700_000_100 })],
      ['file added', () => void at(root, 'd4', 's2').children!.set('new', file('new'))],
      ['file removed', () => void at(root, 'd5', 's1').children!.delete('f7')],
      ['directory with files added (parent link count)', () => {
        const d = newDir('added', meta);
        for (let f = 0; f < 5; f++) d.children!.set(`g${f}`, file(`g${f}`));
        at(root, 'd1').children!.set('added', d);
      }],
      ['directory subtree removed (parent link count)', () => void at(root, 'd2').children!.delete('s2')],
      ['symlink target of the same length', () => void (at(root, 'd0', 'link').target = 'bbb')],
      ['xattr value of the same length', () => void (at(root, 'd0', 'attrs').xattrs = { 'user.role': Buffer.from('v2') })],
      ['hard link group formed', () => {
        const s = at(root, 'd3', 's0');
        const a = s.children!.get('f1')!;
        a.hlGroup = 5;
        s.children!.set('f1-link', { ...a, name: 'f1-link' });
      }],
      ['subdirectory becomes a nested catalog mountpoint', () => {
        at(root, 'd4', 's0').nested = true;
        const total = { ...zeroCounters(), regular: 20, dir: 1 };
        return [{ path: `${ROOT}/d4/s0`, hash: 'cd'.repeat(20), size: 4096, total }];
      }],
      ['rename (remove + add)', () => {
        const s = at(root, 'd5', 's2');
        const f = s.children!.get('f2')!;
        s.children!.delete('f2');
        s.children!.set('f2-renamed', { ...f, name: 'f2-renamed' });
      }],
    ];
    let nested: Nested = [];
    for (const [what, change] of steps) {
      const r = change();
      if (Array.isArray(r)) nested = r;
      const patched = write(root, { db: prev.db, image: prev.image }, nested);
      const full = write(root, undefined, nested);
      expect(patched.patched, what).toBe(true);
      expect(content(patched.db), what).toBe(content(full.db));
      expect(patched.entries, what).toBe(full.entries);
      prev = patched;
    }
  });

  it('unchanged tree: the patched catalog holds the same rows', () => {
    const root = tree();
    const a = write(root);
    const b = write(root, { db: a.db, image: a.image });
    expect(b.patched).toBe(true);
    expect(content(b.db)).toBe(content(a.db));
  });

  it('builds in full when most rows changed, the image does not match the catalog, or the image is damaged', () => {
    const root = tree();
    const a = write(root);
    // most rows changed: a full build
    for (const d of root.children!.values()) if (d.type === 'dir') for (const s of d.children!.values()) if (s.type === 'dir') for (const f of s.children!.values()) f.hash = hash();
    const most = write(root, { db: a.db, image: a.image });
    expect(most.patched).toBe(false);
    expect(content(most.db)).toBe(content(write(root).db));
    // an image of another catalog (row count differs)
    at(root, 'd1', 's1').children!.set('extra', file('extra'));
    const other = write(newDir('tree', meta));
    const mismatched = write(root, { db: most.db, image: other.image });
    expect(mismatched.patched).toBe(false);
    expect(content(mismatched.db)).toBe(content(write(root).db));
    // a damaged image that still parses (the key of one row altered): the patch would insert a row
    // the catalog already has; it is refused and the catalog built in full
    const base = write(root);
    const bytes = base.image.serialize();
    bytes[16 + 5 * 96] ^= 0xff;
    const damaged = RowImage.parse(bytes)!;
    Object.assign(at(root, 'd2', 's2', 'f2'), { hash: hash() });
    const r = write(root, { db: base.db, image: damaged });
    expect(r.patched).toBe(false);
    expect(content(r.db)).toBe(content(write(root).db));
  });

  it('image files round-trip (a catalog of more rows than an image starts with) and refuse other formats', () => {
    const root = tree();
    const big = newDir('big', meta);
    for (let f = 0; f < 5000; f++) big.children!.set(`b${f}`, file(`b${f}`));
    root.children!.set('big', big);
    const a = write(root);
    expect(a.image.count).toBeGreaterThan(4096);
    // the catalog of a grown image reads back as the same tree (every row under its parent)
    const restored = entriesFromCatalog(readCatalog(a.db), ROOT);
    expect([...at(restored, 'd5', 's2').children!.keys()]).toEqual([...at(root, 'd5', 's2').children!.keys()]);
    expect(at(restored, 'big').children!.size).toBe(5000);
    expect(restored.children!.size).toBe(root.children!.size);
    const back = RowImage.parse(a.image.serialize())!;
    expect(back.count).toBe(a.image.count);
    for (let i = 0; i < back.count; i++) expect(back.sameRow(i, a.image, i)).toBe(true);
    expect(RowImage.parse(Buffer.from('not an image'))).toBeUndefined();
    expect(RowImage.parse(a.image.serialize().subarray(0, 200))).toBeUndefined();
    // rows added after the image grew keep their parents and columns: a patch equals a full build
    Object.assign(big.children!.get('b4999')!, { hash: hash(), size: 4242 });
    big.children!.set('b-new', file('b-new'));
    const patched = write(root, { db: a.db, image: back });
    expect(patched.patched).toBe(true);
    expect(content(patched.db)).toBe(content(write(root).db));
  });
});
