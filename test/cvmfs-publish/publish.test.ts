/**
 * Publishing end to end through the CLI and the API: revisions, incremental republish, symlink
 * switch + rollback + checkout at each tag, diff, tags, rm, gc, the transaction API (streams,
 * hard links, xattrs), auto-nesting, and bad input that must leave the repository unchanged.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkout, diffTags, garbageCollect, initRepository, link, listTags, openRepository, openTransaction, publishTree, removePath, tagRevision, verifyRepository,
} from '../../cvmfs-publish/index.ts';
import { readCatalog } from '../../cvmfs-publish/catalog.ts';
import { objectPath } from '../../cvmfs-publish/format.ts';
import { MAIN_BUDGET } from '../../cvmfs-publish/source-scan.ts';
import { UsageError } from '../../base/errors.ts';
import { gf, inflateObject, makeTree, manifestFields, rmrf, tmpDir } from './helpers.ts';

let dir: string;
let repo: string;
beforeAll(() => {
  dir = tmpDir('pub');
  repo = path.join(dir, 'repo');
});
afterAll(() => rmrf(dir));

/** Everything a reader could see: served files + object list (the gridforge state excluded). */
function snapshot(r: string): string {
  return execFileSync('sh', ['-c', `cd ${r} && find . -path ./.gridforge -prune -o -type f -print | sort | xargs sha1sum`], { encoding: 'utf8' });
}

describe('repo commands', () => {
  it('init + publish + ls + cat + verify through the CLI (--json, exit codes)', () => {
    const init = gf(['repo', 'init', repo, '--name', 'alice.example.org', '--gc', '--json']); // --gc: a later test runs `repo gc`
    expect(init.code, init.stderr).toBe(0);
    const ij = JSON.parse(init.stdout);
    expect(ij.keysDir).toBe(`${repo}.keys`);
    expect(fs.existsSync(`${repo}.keys/alice.example.org.masterkey`)).toBe(true);
    expect(gf(['repo', 'init', repo, '--name', 'alice.example.org']).code).toBe(2); // not empty
    const src = path.join(dir, 'src-a');
    makeTree(src, 'a');
    const pub = gf(['repo', 'publish', repo, src, '--path', 'containers/fs/singularity/alma9-a', '--tag', 'img-a', '--json']);
    expect(pub.code, pub.stderr).toBe(0);
    const pj = JSON.parse(pub.stdout);
    expect(pj.revision).toBe(2);
    expect(pj.tree.files).toBe(8);
    const ls = JSON.parse(gf(['repo', 'ls', repo, 'containers/fs/singularity/alma9-a/bin', '--json']).stdout);
    expect(ls.map((e: { path: string }) => e.path.split('/').pop())).toEqual(['random', 'rel-link', 'tool', 'tool-hardlink']);
    const cat = gf(['repo', 'cat', repo, 'containers/fs/singularity/alma9-a/etc/os-release']);
    expect(cat.stdout).toBe('NAME=a\n');
    expect(gf(['repo', 'cat', repo, 'no/such/file']).code).toBe(2);
    const v = gf(['repo', 'verify', repo, '--json']);
    expect(v.code, v.stdout).toBe(0);
    expect(JSON.parse(v.stdout).ok).toBe(true);
  });

  it('republish of an unchanged tree recompresses nothing; unchanged nested catalogs are reused', async () => {
    const src = path.join(dir, 'src-a');
    const r = await publishTree(repo, src, 'containers/fs/singularity/alma9-a', { onProgress: () => {} });
    expect(r.filesReused).toBe(8);
    expect(r.filesStored).toBe(0);
    const srcB = path.join(dir, 'src-b');
    makeTree(srcB, 'b');
    await publishTree(repo, srcB, 'containers/fs/singularity/alma9-b', { tag: 'img-b', onProgress: () => {} });
    const before = (await openRepository(repo)).rootHash;
    const nestedA1 = execFileSync('sqlite3', [inflate(before), "select sha1 from nested_catalogs where path like '%alma9-a'"], { encoding: 'utf8' }).trim();
    fs.writeFileSync(path.join(srcB, 'etc/os-release'), 'NAME=b2\n');
    const r2 = await publishTree(repo, srcB, 'containers/fs/singularity/alma9-b', { onProgress: () => {} });
    expect(r2.filesStored).toBe(1);
    expect(r2.catalogsWritten).toBe(2); // root + alma9-b; alma9-a reused
    const nestedA2 = execFileSync('sqlite3', [inflate(r2.rootHash), "select sha1 from nested_catalogs where path like '%alma9-a'"], { encoding: 'utf8' }).trim();
    expect(nestedA2).toBe(nestedA1);
    expect((await (await openRepository(repo)).readFile('/containers/fs/singularity/alma9-b/etc/os-release')).toString()).toBe('NAME=b2\n');
  });

  it('symlink switch, rollback, and checkout showing the expected target at each tag', async () => {
    const L = 'containers/fs/singularity/default';
    const quiet = { onProgress: () => {} };
    expect(gf(['repo', 'link', repo, L, 'alma9-a', '--tag', 'default-a']).code).toBe(0);
    await link(repo, L, 'alma9-b', { tag: 'default-b', ...quiet });
    const rb = gf(['repo', 'rollback', repo, '--tag', 'default-a', '--json']);
    expect(rb.code, rb.stderr).toBe(0);
    const rbj = JSON.parse(rb.stdout);
    const cur = manifestFields(repo);
    expect(Number(cur.S)).toBe(rbj.revision);
    const co = async (tag: string | undefined, name: string) => {
      const d = path.join(dir, name);
      await checkout(repo, d, { tag, keepSetuid: true }); // a faithful copy (setuid is stripped by default)
      return d;
    };
    const da = await co('default-a', 'co-a');
    const db = await co('default-b', 'co-b');
    const dc = path.join(dir, 'co-current');
    const res = gf(['repo', 'checkout', repo, dc, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).revision).toBe(rbj.revision);
    expect(fs.readlinkSync(path.join(da, L))).toBe('alma9-a');
    expect(fs.readlinkSync(path.join(db, L))).toBe('alma9-b');
    expect(fs.readlinkSync(path.join(dc, L))).toBe('alma9-a');
    // the checked-out tree is a faithful copy: content through the symlink, modes, hard links, absolute symlinks
    expect(fs.readFileSync(path.join(db, L, 'etc/os-release'), 'utf8')).toBe('NAME=b2\n');
    const tool = fs.statSync(path.join(da, 'containers/fs/singularity/alma9-a/bin/tool'));
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect(tool.nlink).toBe(2);
    expect(fs.readlinkSync(path.join(da, 'containers/fs/singularity/alma9-a/etc/localtime'))).toBe('/usr/share/zoneinfo/UTC');
    expect(fs.readFileSync(path.join(da, 'containers/fs/singularity/alma9-a/ünïcødé'), 'utf8')).toBe('x\n');
    // diff between the two tags: the symlink target changed
    const diff = await diffTags(repo, 'default-a', 'default-b');
    expect(diff).toEqual([{ path: `/${L}`, change: 'modified', what: 'target alma9-a -> alma9-b' }]);
    // tags list: trunk, trunk-previous and named tags
    const tags = listTags(repo).map((t) => t.name);
    expect(tags).toEqual(expect.arrayContaining(['trunk', 'trunk-previous', 'img-a', 'img-b', 'default-a', 'default-b']));
    // tag an older revision
    await tagRevision(repo, 'second', { revision: 2 });
    const old = await openRepository(repo, { tag: 'second' });
    expect(old.revision).toBe(2);
    expect(await old.stat('/containers/fs/singularity/alma9-b')).toBeUndefined();
    await expect(tagRevision(repo, 'x', { revision: 999 })).rejects.toBeInstanceOf(UsageError);
    expect(gf(['repo', 'rollback', repo, '--tag', 'nope']).code).toBe(2);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });

  it('rm removes a path in a new revision; gc keeps tagged revisions and removes the rest', async () => {
    const src = path.join(dir, 'src-tmp');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'only-here'), 'unique content that will become garbage\n');
    await publishTree(repo, src, 'scratch', { onProgress: () => {} });
    const r = await openRepository(repo);
    const h = (await r.stat('/scratch/only-here'))!.hash!;
    const obj = path.join(repo, 'data', h.slice(0, 2), h.slice(2));
    expect(fs.existsSync(obj)).toBe(true);
    await removePath(repo, 'scratch', { onProgress: () => {} });
    expect(await (await openRepository(repo)).stat('/scratch')).toBeUndefined();
    await expect(removePath(repo, 'scratch')).rejects.toBeInstanceOf(UsageError);
    // trunk-previous is kept as the undo target: move it past the revision that had /scratch
    await link(repo, 'containers/fs/singularity/default', 'alma9-a', { onProgress: () => {} });
    const dry = await garbageCollect(repo, { keepRevisions: 1, dryRun: true });
    expect(dry.removed).toBeGreaterThan(0);
    expect(fs.existsSync(obj)).toBe(true);
    const gc = JSON.parse(gf(['repo', 'gc', repo, '--keep-revisions', '1', '--json']).stdout);
    expect(gc.removed).toBe(dry.removed);
    expect(fs.existsSync(obj)).toBe(false);
    // tagged revisions survive and still verify and check out
    const v = await verifyRepository(repo);
    expect(v.problems).toEqual([]);
    const co = await checkout(repo, path.join(dir, 'co-after-gc'), { tag: 'img-a' });
    expect(co.files).toBeGreaterThan(0);
    // republishing the collected content stores its objects again (the incremental cache was dropped)
    await publishTree(repo, src, 'scratch', { onProgress: () => {} });
    expect(fs.existsSync(obj)).toBe(true);
    expect((await verifyRepository(repo)).problems).toEqual([]);
    await removePath(repo, 'scratch', { onProgress: () => {} });
  });
});

describe('keys', () => {
  it('init imports an existing key set, refuses keys inside the served tree, and verify works on the imported repository', async () => {
    const { initRepository } = await import('../../cvmfs-publish/index.ts');
    const r1 = path.join(dir, 'repo1');
    expect((await initRepository(r1, { name: 'alice.example.org', keysDir: path.join(dir, 'shared-keys') })).keysCreated).toBe(true);
    const r2 = path.join(dir, 'repo2');
    const res = await initRepository(r2, { name: 'alice.example.org', keysDir: path.join(dir, 'shared-keys'), importKeys: true });
    expect(res.keysCreated).toBe(false);
    expect(fs.readFileSync(path.join(r2, '.cvmfswhitelist'), 'utf8').split('\n')[3]).toBe(fs.readFileSync(path.join(r1, '.cvmfswhitelist'), 'utf8').split('\n')[3]);
    expect((await verifyRepository(r2)).ok).toBe(true);
    const r3 = path.join(dir, 'repo3');
    await expect(initRepository(r3, { name: 'x.example.org', keysDir: path.join(r3, 'keys') })).rejects.toThrow(/inside the served repository/);
    expect(fs.existsSync(r3)).toBe(false);
    await expect(initRepository(path.join(dir, 'repo4'), { name: 'Not A Name' })).rejects.toBeInstanceOf(UsageError);
    fs.copyFileSync(path.join(dir, 'shared-keys', 'alice.example.org.pub'), path.join(dir, 'partial.pub'));
    fs.mkdirSync(path.join(dir, 'partial-keys'));
    fs.copyFileSync(path.join(dir, 'shared-keys', 'alice.example.org.key'), path.join(dir, 'partial-keys', 'other.example.org.key'));
    await expect(initRepository(path.join(dir, 'repo5'), { name: 'other.example.org', keysDir: path.join(dir, 'partial-keys') })).rejects.toThrow(/only part of the key set/);
  });
});

describe('transaction API', () => {
  it('streams, mkdir, hard links, xattrs, symlinks; auto-nesting splits a big catalog', async () => {
    const tx = openTransaction(repo, { maxCatalogEntries: 40, onProgress: () => {} });
    await tx.mkdir('x86_64/Packages/JAliEn/1.0', { mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 });
    await tx.putFile('x86_64/Packages/JAliEn/1.0/bin/jalien', Readable.from([Buffer.from('#!/bin/sh\n'), Buffer.from('echo jalien\n')]), { mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000, xattrs: { 'user.origin': Buffer.from('gridforge') } });
    await tx.putFile('x86_64/Packages/JAliEn/1.0/lib/a.jar', Buffer.from('jar bytes'), { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 });
    await tx.hardlink('x86_64/Packages/JAliEn/1.0/lib/b.jar', 'x86_64/Packages/JAliEn/1.0/lib/a.jar');
    await tx.symlink('x86_64/Packages/JAliEn/latest', '1.0');
    await expect(tx.hardlink('x86_64/other', 'x86_64/Packages/JAliEn/1.0/lib/a.jar')).rejects.toThrow(/within one directory/);
    for (let d = 0; d < 3; d++) for (let i = 0; i < 30; i++) await tx.putFile(`x86_64/many/d${d}/f${i}`, Buffer.from(`${d}/${i}`), { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 });
    const c = await tx.commit({ tag: 'api' });
    const r = await openRepository(repo);
    expect(r.revision).toBe(c.revision);
    expect((await r.readFile('/x86_64/Packages/JAliEn/1.0/bin/jalien')).toString()).toBe('#!/bin/sh\necho jalien\n');
    const st = await r.stat('/x86_64/Packages/JAliEn/1.0/bin/jalien');
    expect(st!.xattrs).toEqual({ 'user.origin': 'gridforge' });
    expect(st!.mode).toBe(0o100755);
    const a = await r.stat('/x86_64/Packages/JAliEn/1.0/lib/a.jar');
    const b = await r.stat('/x86_64/Packages/JAliEn/1.0/lib/b.jar');
    expect(a!.hardlinkGroup).toBeGreaterThan(0);
    expect(b!.hardlinkGroup).toBe(a!.hardlinkGroup);
    expect((await r.stat('/x86_64/Packages/JAliEn/latest'))!.target).toBe('1.0');
    // 90 files + dirs > 40 entries: split into nested catalogs, every catalog within the limit
    const nested = [] as string[];
    for await (const e of r.walk('/x86_64')) if (e.nestedCatalog) nested.push(e.path);
    expect(nested.length).toBeGreaterThanOrEqual(2);
    // package versions get their own catalog by the default nesting patterns, with its marker (catalog-markers.test.ts)
    expect((await r.stat('/x86_64/Packages/JAliEn/1.0'))!.nestedCatalog).toBe(true);
    expect((await r.stat('/x86_64/Packages/JAliEn/1.0/.cvmfscatalog'))!.size).toBe(0);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });
});

describe('republish writes only the changed rows into the previous catalog', () => {
  it('the patched catalog holds the rows a fresh publish writes; images follow the head, gc prunes them', async () => {
    const quiet = { onProgress: () => {} };
    const r = path.join(dir, 'repo-patch');
    await initRepository(r, { name: 'patch.example.org', keysDir: path.join(dir, 'patch-keys'), garbageCollectable: true });
    const src = path.join(dir, 'src-many');
    for (let d = 0; d < 30; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 80; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `file ${d}/${f}\n`);
    }
    fs.symlinkSync('d0/f0', path.join(src, 'top-link'));
    const first = await publishTree(r, src, 'sw/many', quiet);
    expect(first.catalogsPatched).toBe(0);
    const images = () => fs.readdirSync(path.join(r, '.gridforge', 'catalog-rows'));
    expect(images()).toHaveLength(1); // the 2,400-row catalog (the root catalog is too small to keep one)
    // every kind of change: content, mode, added and removed files, a new directory, a retargeted symlink
    fs.writeFileSync(path.join(src, 'd3', 'f5'), 'changed content\n');
    fs.chmodSync(path.join(src, 'd4', 'f6'), 0o755);
    fs.writeFileSync(path.join(src, 'd5', 'added'), 'new file\n');
    fs.rmSync(path.join(src, 'd6', 'f7'));
    fs.mkdirSync(path.join(src, 'newdir'));
    fs.writeFileSync(path.join(src, 'newdir', 'x'), 'x\n');
    fs.rmSync(path.join(src, 'top-link'));
    fs.symlinkSync('d1/f1', path.join(src, 'top-link'));
    const second = await publishTree(r, src, 'sw/many', quiet);
    expect(second.catalogsPatched).toBe(1);
    expect(second.filesStored).toBe(4); // changed, added, newdir/x, and the chmod'ed file (its ctime changed)
    expect(images()).toHaveLength(1); // the image of the replaced catalog went with it
    expect((await verifyRepository(r)).problems).toEqual([]);
    // the same rows as a publish of the same tree into a new repository (built in full)
    const fresh = path.join(dir, 'repo-patch-fresh');
    await initRepository(fresh, { name: 'patch.example.org', keysDir: path.join(dir, 'patch-keys-fresh') });
    await publishTree(fresh, src, 'sw/many', quiet);
    const rowsOf = (repoDir: string) => {
      const rootDb = zlib.inflateSync(fs.readFileSync(path.join(repoDir, objectPath(manifestFields(repoDir).C, 'C'))));
      const nested = readCatalog(rootDb).nested.find((n) => n.path === '/sw/many')!;
      const cat = readCatalog(zlib.inflateSync(fs.readFileSync(path.join(repoDir, objectPath(nested.hash, 'C')))));
      return { rows: cat.rows.map((row) => JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).sort(), stats: cat.statistics };
    };
    const patched = rowsOf(r);
    expect(patched.rows).toHaveLength(30 * 80 + 30 + 1 + 1 + 2 + 1); // files, dirs, link, root row, newdir + x, marker
    expect(patched).toEqual(rowsOf(fresh));
    // and it checks out as the source tree
    const co = path.join(dir, 'co-many');
    await checkout(r, co, {});
    const listing = (root: string) => execFileSync('find', [root, '-printf', '%P %y %m %s %l\\n'], { encoding: 'utf8' }).split('\n').filter((l) => !l.startsWith('.cvmfscatalog')).sort();
    expect(listing(path.join(co, 'sw/many'))).toEqual(listing(src));
    execFileSync('diff', ['-r', '--no-dereference', '--exclude=.cvmfscatalog', src, path.join(co, 'sw/many')]);
    // once no kept revision (trunk-previous included) references the catalog, gc drops its image
    await removePath(r, 'sw/many', quiet);
    await link(r, 'sw/default', 'many', quiet);
    await garbageCollect(r, { keepRevisions: 1 });
    expect(images()).toHaveLength(0);
  });
});

describe('source scan on worker threads', () => {
  /** Every catalog of the current revision: path -> its rows (sorted, as JSON). */
  function allRows(repoDir: string): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    const visit = (hash: string, at: string) => {
      const cat = readCatalog(zlib.inflateSync(fs.readFileSync(path.join(repoDir, objectPath(hash, 'C')))));
      out[at] = cat.rows.map((row) => JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).sort();
      for (const n of cat.nested) visit(n.hash, n.path);
    };
    visit(manifestFields(repoDir).C, '');
    return out;
  }

  it('gives the catalogs a scan on the main thread gives (hard links, symlinks, fifos, nested markers deep in worker subtrees)', async () => {
    const quiet = { onProgress: () => {} };
    const src = path.join(dir, 'src-scan');
    for (let d = 0; d < 40; d++) {
      fs.mkdirSync(path.join(src, `d${d}`, 'sub'), { recursive: true });
      for (let f = 0; f < 40; f++) fs.writeFileSync(path.join(src, `d${d}`, f % 2 ? 'sub' : '', `f${f}`), `scan ${d}/${f}\n`);
    }
    expect(40 * 42).toBeGreaterThan(MAIN_BUDGET); // the last directories are listed by the workers
    const deep = path.join(src, 'd39', 'sub');
    fs.linkSync(path.join(deep, 'f1'), path.join(deep, 'f1-hardlink'));
    fs.symlinkSync('../f0', path.join(deep, 'up-link'));
    execFileSync('mkfifo', [path.join(deep, 'pipe')]);
    fs.mkdirSync(path.join(deep, 'nested'));
    fs.writeFileSync(path.join(deep, 'nested', '.cvmfscatalog'), '');
    fs.writeFileSync(path.join(deep, 'nested', 'inside'), 'inside a nested catalog\n');
    const repos: Record<string, string> = {};
    for (const threads of ['2', '0']) {
      const r = path.join(dir, `repo-scan-${threads}`);
      await initRepository(r, { name: 'scan.example.org', keysDir: path.join(dir, `scan-keys-${threads}`) });
      process.env.GRIDFORGE_SCAN_THREADS = threads;
      try {
        const res = await publishTree(r, src, 'sw/scan', quiet);
        expect(res.tree).toEqual({ files: 40 * 40 + 3, dirs: 80 + 1, symlinks: 1, bytes: expect.any(Number) }); // + hard link, marker, inside
      } finally {
        delete process.env.GRIDFORGE_SCAN_THREADS;
      }
      repos[threads] = r;
    }
    const withWorkers = allRows(repos['2']);
    expect(Object.keys(withWorkers).sort()).toEqual(['', '/sw/scan', '/sw/scan/d39/sub/nested']);
    expect(withWorkers['/sw/scan'].filter((row) => row.includes('"f1-hardlink"'))[0]).toMatch(/"hardlinks":"4294967298"/); // group 1, 2 names
    // the trees' catalogs are the same (the root catalogs differ: /sw is made at publish time)
    const mainOnly = allRows(repos['0']);
    for (const at of ['/sw/scan', '/sw/scan/d39/sub/nested']) expect(withWorkers[at], at).toEqual(mainOnly[at]);
  });

  it('bad input found by a worker: a clear error naming the entry, the repository unchanged', async () => {
    const quiet = { onProgress: () => {} };
    const r = path.join(dir, 'repo-scan-2');
    const src = path.join(dir, 'src-scan-bad');
    for (let d = 0; d < 40; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 40; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `bad scan ${d}/${f}\n`);
    }
    const before = snapshot(r);
    const badName = Buffer.concat([Buffer.from(`${src}/d38/name-`), Buffer.from([0xff]), Buffer.from('.txt')]);
    fs.writeFileSync(badName, 'x');
    const e1 = await publishTree(r, src, 'sw/bad', quiet).catch((e: UsageError) => e);
    expect(e1).toBeInstanceOf(UsageError);
    expect(`${(e1 as UsageError).where}: ${(e1 as UsageError).message}`).toMatch(/d38\/name-.*: file name is not valid UTF-8/);
    expect(snapshot(r)).toBe(before);
    fs.rmSync(badName);
    fs.writeFileSync(path.join(src, 'd39', 'large.bin'), Buffer.alloc(5000));
    const e2 = await publishTree(r, src, 'sw/bad', { ...quiet, maxFileSize: 4096 }).catch((e: UsageError) => e);
    expect(e2).toBeInstanceOf(UsageError);
    expect((e2 as UsageError).where).toMatch(/d39\/large\.bin$/);
    expect((e2 as UsageError).hint).toMatch(/--max-file-size/);
    expect(snapshot(r)).toBe(before);
    expect(fs.readdirSync(path.join(r, 'data', 'txn'))).toEqual([]);
  });
});

describe('putFileRange (files inside a layer blob, compressed on the pool)', () => {
  it('stores ranges of a blob, one above 32 MiB streamed; hard links wait for their target; a range past the end, or an abort, leaves the repository as it was', async () => {
    const blob = path.join(dir, 'layer.blob');
    const small = Buffer.from('#!/bin/sh\necho job\n');
    const random = randomBytes(200_000);
    const big = Buffer.concat([randomBytes(33 << 20), Buffer.from('tail')]);
    fs.writeFileSync(blob, Buffer.concat([Buffer.from('header.'), small, random, big]));
    const at = { small: 7, random: 7 + small.length, big: 7 + small.length + random.length };
    const meta = { mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 };
    const tx = openTransaction(repo, { onProgress: () => {} });
    await tx.putFileRange('sw/range/bin/run', blob, at.small, small.length, meta);
    await tx.putFileRange('sw/range/data/random', blob, at.random, random.length, meta);
    await tx.putFileRange('sw/range/data/big', blob, at.big, big.length, meta);
    await tx.hardlink('sw/range/data/random-link', 'sw/range/data/random');
    await tx.commit({});
    const r = await openRepository(repo);
    expect((await r.readFile('/sw/range/bin/run')).equals(small)).toBe(true);
    expect((await r.readFile('/sw/range/data/random')).equals(random)).toBe(true);
    expect((await r.readFile('/sw/range/data/big')).equals(big)).toBe(true);
    expect((await r.stat('/sw/range/data/random-link'))!.hash).toBe((await r.stat('/sw/range/data/random'))!.hash);
    expect((await verifyRepository(repo)).problems).toEqual([]);

    const before = snapshot(repo);
    const other = path.join(dir, 'other.blob');
    fs.writeFileSync(other, randomBytes(300_000));
    const bad = openTransaction(repo, { onProgress: () => {} });
    await bad.putFileRange('sw/range/fine', other, 1000, 250_000, meta); // a new object, removed again
    await bad.putFileRange('sw/range/short', blob, at.big, big.length + 10, meta);
    await expect(bad.commit({})).rejects.toThrow(/layer\.blob: ends 10 bytes before/);
    expect(snapshot(repo)).toBe(before);
    // an aborted transaction removes what its range jobs stored too
    const dropped = openTransaction(repo, { onProgress: () => {} });
    await dropped.putFileRange('sw/range/fine', other, 2000, 250_000, meta);
    await dropped.waitForObjects();
    expect(snapshot(repo)).not.toBe(before);
    await dropped.abort();
    expect(snapshot(repo)).toBe(before);
  });
});

describe('bad input leaves the repository unchanged', () => {
  it('nonexistent source, path escaping the repository, non-UTF-8 name, oversized file, held lock', async () => {
    const before = snapshot(repo);
    const good = path.join(dir, 'src-a');
    const r1 = gf(['repo', 'publish', repo, path.join(dir, 'does-not-exist'), '--path', 'x']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/does-not-exist.*does not exist/);
    const quiet = { onProgress: () => {} };
    await expect(publishTree(repo, good, '../../etc', quiet)).rejects.toThrow(/escapes the repository/);
    await expect(link(repo, 'a/../../b', 'x', quiet)).rejects.toBeInstanceOf(UsageError);
    const bad = path.join(dir, 'src-bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'ok'), 'ok');
    fs.writeFileSync(Buffer.concat([Buffer.from(`${bad}/name-`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]), 'x');
    await expect(publishTree(repo, bad, 'bad', quiet)).rejects.toThrow(/not valid UTF-8/);
    const big = path.join(dir, 'src-big');
    fs.mkdirSync(big);
    fs.writeFileSync(path.join(big, 'large.bin'), Buffer.alloc(5000));
    const r4 = await publishTree(repo, big, 'big', { ...quiet, maxFileSize: 4096 }).catch((e: UsageError) => e);
    expect(r4).toBeInstanceOf(UsageError);
    expect(`${(r4 as UsageError).where}: ${(r4 as UsageError).message}`).toMatch(/large\.bin: .*above the size limit of 4096/);
    // bad input found after the scan already handed hundreds of files to the compression workers:
    // the objects they stored are removed again
    const late = path.join(dir, 'src-late-bad');
    fs.mkdirSync(path.join(late, 'sub'), { recursive: true });
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(late, `f${i}`), `unique content ${i} `.repeat(50));
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(late, 'sub', `g${i}`), `other content ${i} `.repeat(50));
    fs.writeFileSync(path.join(late, 'sub', 'large.bin'), Buffer.alloc(5000));
    const r6 = await publishTree(repo, late, 'late', { ...quiet, maxFileSize: 4096 }).catch((e: UsageError) => e);
    expect(r6).toBeInstanceOf(UsageError);
    expect((r6 as UsageError).where).toMatch(/sub\/large\.bin$/);
    // a live publisher holds the lock: a second one fails at once
    const tx = openTransaction(repo, { onProgress: () => {} });
    try {
      const t0 = Date.now();
      const r5 = gf(['repo', 'publish', repo, good, '--path', 'other']);
      expect(r5.code).toBe(2);
      expect(r5.stderr).toMatch(/locked by another publisher/);
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      await tx.abort();
    }
    expect(snapshot(repo)).toBe(before);
  });

  it('a lock left by a dead process is cleared by `repo abort`, or by the next publish itself', async () => {
    const child = spawn('true');
    await new Promise((r) => child.on('exit', r));
    const deadLock = JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), started: 'x', operation: 'publish killed' });
    fs.writeFileSync(path.join(repo, '.gridforge/lock'), deadLock);
    const a = gf(['repo', 'abort', repo, '--json']);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).hadLock).toBe(true);
    fs.writeFileSync(path.join(repo, '.gridforge/lock'), deadLock);
    const r = await publishTree(repo, path.join(dir, 'src-a'), 'again', { onProgress: () => {} }); // test/cvmfs-publish/crash-recovery.test.ts covers this in depth
    expect(r.recovered?.hadLock).toBe(true);
    expect(r.revision).toBeGreaterThan(2);
  });
});

function inflate(hash: string): string {
  return inflateObject(repo, hash, 'C', path.join(dir, `${hash}.db`));
}
