/**
 * Every nested catalog root holds its `.cvmfscatalog` marker (an empty regular file, flags 4, in the
 * nested catalog itself, as cvmfs_server writes it), however the catalog became nested: a nesting
 * pattern, the automatic split of a large catalog, putTree, or a catalog published before this
 * rule (the next publish touching it adds the marker). `cvmfs_swissknife check` reports "nested
 * catalog without marker" otherwise (cvmfs/swissknife_check.cc), and `repo verify` does too, as
 * well as a marker outside a catalog root ("abandoned nested catalog marker" there).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, openRepository, openTransaction, verifyRepository } from '../../cvmfs-publish/index.ts';
import { readCatalog, writeCatalog } from '../../cvmfs-publish/catalog.ts';
import { newDir, type Entry } from '../../cvmfs-publish/entry.ts';
import { Flags, md5path, objectPath } from '../../cvmfs-publish/format.ts';
import { ObjectStore } from '../../cvmfs-publish/object-store.ts';
import { loadRepoKeys, readHead, readHistory, readReflog, readRepoConfig, writeHead } from '../../cvmfs-publish/repository.ts';
import { checkCatalogInvariants } from '../../cvmfs-publish/verify.ts';
import { gf, rmrf, tmpDir } from './helpers.ts';

const EMPTY_HASH = 'e8ec3d88b62ebf526e4e5a4ff6162a3aa48a6b78'; // SHA-1 of the zlib stream of no bytes
const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
const IMG = '/containers/fs/singularity/x';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = tmpDir('markers');
});
afterAll(() => rmrf(dir));

async function newRepo(): Promise<string> {
  const repo = path.join(dir, `repo-${n++}`);
  await initRepository(repo, { name: 'markers.example.org', keysDir: `${repo}.keys` });
  return repo;
}

function openDb(repo: string, hash: string): Database.Database {
  return new Database(zlib.inflateSync(fs.readFileSync(path.join(repo, objectPath(hash, 'C')))), { readonly: true });
}

/** Every catalog of the head: path ('' = root) -> hash. */
function catalogs(repo: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string, hash: string) => {
    out.set(p, hash);
    const db = openDb(repo, hash);
    const nested = db.prepare('SELECT path, sha1 FROM nested_catalogs').all() as { path: string; sha1: string }[];
    db.close();
    for (const c of nested) walk(c.path, c.sha1);
  };
  walk('', readHead(repo).manifest.rootHash);
  return out;
}

interface MarkerRow {
  hash: string;
  size: number;
  mode: number;
  flags: number;
  parentOk: number;
  keyOk: number;
}

/** The `.cvmfscatalog` rows of one catalog, with whether their keys name `<root>/.cvmfscatalog`. */
function markerRows(repo: string, hash: string, root: string): MarkerRow[] {
  const db = openDb(repo, hash);
  const [p1, p2] = md5path(root);
  const [k1, k2] = md5path(`${root}/.cvmfscatalog`);
  const rows = db
    .prepare("SELECT lower(hex(hash)) AS hash, size, mode, flags, (parent_1 = ? AND parent_2 = ?) AS parentOk, (md5path_1 = ? AND md5path_2 = ?) AS keyOk FROM catalog WHERE name = '.cvmfscatalog'")
    .all(p1, p2, k1, k2) as MarkerRow[];
  db.close();
  return rows;
}

/** Each nested catalog holds exactly one marker, at its root, an empty regular file (flags 4); the parent catalog holds none for it. */
function expectMarkers(repo: string, nestedPaths: string[]): void {
  const cats = catalogs(repo);
  for (const p of nestedPaths) {
    expect(cats.has(p), `nested catalog ${p}`).toBe(true);
    expect(markerRows(repo, cats.get(p)!, p), `marker row in the catalog of ${p}`).toEqual([{ hash: EMPTY_HASH, size: 0, mode: 0o100644, flags: Flags.File, parentOk: 1, keyOk: 1 }]);
  }
  for (const [p, hash] of cats) {
    const db = openDb(repo, hash);
    const stray = db.prepare("SELECT count(*) AS c FROM catalog WHERE name = '.cvmfscatalog' AND NOT (parent_1 = ? AND parent_2 = ?)").get(...md5path(p)) as { c: number };
    db.close();
    expect(stray.c, `markers below the root of catalog ${p || '/'}`).toBe(0);
  }
}

describe('a .cvmfscatalog marker in every nested catalog root', () => {
  it('catalogs nested by the default patterns (/containers/fs/singularity/*, /*/Packages/*/*) get the marker row in the nested catalog', async () => {
    const repo = await newRepo();
    const tx = openTransaction(repo);
    await tx.putFile(`${IMG}/bin/sh`, Buffer.from('#!/bin/sh\n'), { ...meta, mode: 0o755 });
    await tx.putFile('x86_64/Packages/JAliEn/1.0/bin/jalien', Buffer.from('jalien\n'), meta);
    await tx.commit();
    expectMarkers(repo, [IMG, '/x86_64/Packages/JAliEn/1.0']);
    const root = openDb(repo, readHead(repo).manifest.rootHash);
    expect((root.prepare("SELECT count(*) AS c FROM catalog WHERE name = '.cvmfscatalog'").get() as { c: number }).c).toBe(0);
    root.close();
    const r = await openRepository(repo);
    expect((await r.stat(`${IMG}/.cvmfscatalog`))?.size).toBe(0);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });

  it('catalogs split automatically (small maxCatalogEntries) get the marker', async () => {
    const repo = await newRepo();
    const tx = openTransaction(repo, { maxCatalogEntries: 20, nestPatterns: [] });
    for (let d = 0; d < 4; d++) for (let f = 0; f < 12; f++) await tx.putFile(`sw/d${d}/f${f}`, Buffer.from(`${d}/${f}\n`), meta);
    await tx.putFile('sw/small/f', Buffer.from('small\n'), meta);
    await tx.commit();
    const nested = [...catalogs(repo).keys()].filter((p) => p !== '').sort();
    // split at the largest directories until each catalog holds at most 20 entries (no pattern nests anything here)
    expect(nested).toEqual(['/sw', '/sw/d0', '/sw/d1', '/sw/d2']);
    expectMarkers(repo, nested);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });

  it('putTree keeps a marker the tree brings, adds one where it has none, nests deeper marked directories', async () => {
    const repo = await newRepo();
    const src = path.join(dir, `tree-${n++}`);
    fs.mkdirSync(path.join(src, 'a/deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a/file'), 'a\n');
    fs.writeFileSync(path.join(src, 'a/deep/.cvmfscatalog'), '');
    fs.writeFileSync(path.join(src, 'a/deep/file'), 'deep\n');
    const tx = openTransaction(repo);
    await tx.putTree('opt/tree', src);
    await tx.commit();
    expectMarkers(repo, ['/opt/tree', '/opt/tree/a/deep']);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });
});

/**
 * Turn the head into one written before markers were added for pattern-nested catalogs: the
 * marker row of `nested` goes (statistics follow), the parent catalog points at the new catalog,
 * and a new head is signed. Returns the repository.
 */
async function dropMarker(repo: string, nested: string): Promise<void> {
  const store = new ObjectStore(repo);
  const { manifest } = readHead(repo);
  const rootDb = new Database(zlib.inflateSync(store.readCompressed(manifest.rootHash, 'C')));
  const { sha1 } = rootDb.prepare('SELECT sha1 FROM nested_catalogs WHERE path = ?').get(nested) as { sha1: string };
  const nestedDb = new Database(zlib.inflateSync(store.readCompressed(sha1, 'C')));
  expect(nestedDb.prepare("DELETE FROM catalog WHERE name = '.cvmfscatalog'").run().changes).toBe(1);
  nestedDb.prepare("UPDATE statistics SET value = value - 1 WHERE counter = 'self_regular'").run();
  const nestedBytes = nestedDb.serialize();
  nestedDb.close();
  const newNested = store.putBuffer(nestedBytes, 'C').hash;
  rootDb.prepare('UPDATE nested_catalogs SET sha1 = ?, size = ? WHERE path = ?').run(newNested, nestedBytes.length, nested);
  rootDb.prepare("UPDATE statistics SET value = value - 1 WHERE counter = 'subtree_regular'").run();
  const rootBytes = rootDb.serialize();
  rootDb.close();
  const rootHash = store.putBuffer(rootBytes, 'C').hash;
  const cfg = readRepoConfig(repo);
  const history = readHistory(store, manifest);
  const now = Math.floor(Date.now() / 1000);
  history.advance({ hash: rootHash, revision: manifest.revision + 1, size: rootBytes.length, timestamp: now });
  await writeHead(repo, cfg, loadRepoKeys(repo, cfg), { rootHash, rootSize: rootBytes.length, revision: manifest.revision + 1, history, reflog: readReflog(repo, cfg.name), newCatalogs: [newNested, rootHash], metainfo: manifest.metainfo, timestamp: now });
}

describe('repo verify and repositories published before the marker rule', () => {
  it('verify names a nested catalog root without its marker (exit 1); the next publish touching that catalog adds it', async () => {
    const repo = await newRepo();
    let tx = openTransaction(repo);
    await tx.putFile(`${IMG}/bin/sh`, Buffer.from('#!/bin/sh\n'), meta);
    await tx.putFile('etc/motd', Buffer.from('hello\n'), meta);
    await tx.commit();
    await dropMarker(repo, IMG);
    expect(markerRows(repo, catalogs(repo).get(IMG)!, IMG)).toEqual([]);
    const res = await verifyRepository(repo);
    expect(res.problems).toHaveLength(1);
    expect(res.problems[0].where).toMatch(new RegExp(`^${IMG} in data/`));
    expect(res.problems[0].problem).toMatch(/nested catalog root without its \.cvmfscatalog marker/);
    const cli = gf(['repo', 'verify', repo, '--json']);
    expect(cli.code).toBe(1);
    expect(cli.stdout + cli.stderr).toContain(IMG);

    // a publish elsewhere reuses the catalog as it is; one below the image rewrites it, with its marker
    tx = openTransaction(repo);
    await tx.putFile('etc/motd', Buffer.from('changed\n'), meta);
    await tx.commit();
    expect(markerRows(repo, catalogs(repo).get(IMG)!, IMG)).toEqual([]);
    tx = openTransaction(repo);
    await tx.putFile(`${IMG}/etc/new`, Buffer.from('new\n'), meta);
    await tx.commit();
    expectMarkers(repo, [IMG]);
    // trunk-previous still names the revision without the marker: history cannot change, so only the current revision must have it
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });

  it('checkCatalogInvariants: a marker outside the catalog root, a missing one, one that is not a regular file', () => {
    const marker = (type: 'file' | 'symlink'): Entry =>
      type === 'file' ? { name: '.cvmfscatalog', type, ...meta, mode: 0o100644, size: 0, hash: EMPTY_HASH } : { name: '.cvmfscatalog', type, ...meta, mode: 0o120777, size: 1, target: 'x' };
    const problems = (rootPath: string, root: Entry): string[] => {
      const cat = readCatalog(writeCatalog({ rootPath, root, revision: 1, previousRevision: '', lastModified: 1, nested: [] }).db);
      const out: string[] = [];
      checkCatalogInvariants(cat, rootPath, 'C', (w, p) => out.push(`${w}: ${p}`), () => {});
      return out;
    };
    const tree = (withRootMarker: 'file' | 'symlink' | 'none', deepMarker: boolean): Entry => {
      const root = newDir('n', { ...meta, mode: 0o40755 });
      const sub = newDir('sub', { ...meta, mode: 0o40755 });
      root.children!.set('sub', sub);
      if (withRootMarker !== 'none') root.children!.set('.cvmfscatalog', marker(withRootMarker));
      if (deepMarker) sub.children!.set('.cvmfscatalog', marker('file'));
      return root;
    };
    expect(problems('/n', tree('file', false))).toEqual([]);
    expect(problems('/n', tree('none', false))).toEqual([expect.stringMatching(/^\/n in C: nested catalog root without its \.cvmfscatalog marker/)]);
    expect(problems('/n', tree('file', true))).toEqual([expect.stringMatching(/^\/n\/sub\/\.cvmfscatalog in C: \.cvmfscatalog marker outside a catalog root/)]);
    expect(problems('/n', tree('symlink', false))).toEqual([expect.stringMatching(/^\/n\/\.cvmfscatalog in C: \.cvmfscatalog marker is not a regular file/)]);
    // the root catalog needs none (swissknife_check.cc checks nested catalogs only)
    const root = newDir('', { ...meta, mode: 0o40755 });
    expect(problems('', root)).toEqual([]);
  });
});
