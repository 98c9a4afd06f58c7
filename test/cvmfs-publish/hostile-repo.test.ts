/**
 * A repository handed over by someone hostile: catalogs whose rows are named "..", "a/b", "", "."
 * or hold a NUL, or whose md5path keys do not match their path, RE-SIGNED with the repository's
 * own keys (so that only the name and key checks can stop them); a config naming a key inside the
 * repository; setuid bits from a catalog; keys directories someone else owns or can write;
 * symlinks planted at key file paths and at the temporary names the old code used.
 * Each must be refused with exit 2 (verify: exit 1 naming the entry) and change nothing outside
 * the output: a sentinel directory around the destination is compared (names, types, modes,
 * owners, link targets) before and after.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkout, initRepository, openRepository, openTransaction, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { Flags, md5path, objectPath } from '../../cvmfs-publish/format.ts';
import { parseManifest, signManifest } from '../../cvmfs-publish/manifest.ts';
import { compressBuffer } from '../../cvmfs-publish/object-store.ts';
import { UsageError } from '../../base/errors.ts';
import { gf, rmrf, tmpDir } from './helpers.ts';

const NAME = 'hostile.example.org';
const OTHER_UID = 4242;
let dir: string;
let keys: string;
let pristine: string;

beforeAll(async () => {
  dir = tmpDir('hostile');
  keys = path.join(dir, 'keys');
  pristine = path.join(dir, 'pristine');
  await initRepository(pristine, { name: NAME, keysDir: keys });
});
afterAll(() => rmrf(dir));

let n = 0;
function fresh(tag: string): string {
  return path.join(dir, `${tag}-${n++}`);
}

interface ForgedRow {
  /** path of the parent directory ('' = root) */
  parent: string;
  name: string;
  type: 'dir' | 'file' | 'symlink';
  mode?: number;
  uid?: number;
  target?: string;
  /** md5path key of this path instead of parent + '/' + name */
  keyOf?: string;
}

/** Insert rows into the root catalog of a copy of the pristine repository and re-sign its manifest with the repository key. */
function forge(rows: ForgedRow[]): string {
  const repo = fresh('forged');
  execFileSync('cp', ['-a', pristine, repo]);
  const mfile = path.join(repo, '.cvmfspublished');
  const { manifest } = parseManifest(fs.readFileSync(mfile));
  const db = new Database(zlib.inflateSync(fs.readFileSync(path.join(repo, objectPath(manifest.rootHash, 'C')))));
  const ins = db.prepare('INSERT INTO catalog (md5path_1, md5path_2, parent_1, parent_2, hardlinks, hash, size, mode, mtime, mtimens, flags, name, symlink, uid, gid, xattr) VALUES (?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,NULL)');
  for (const r of rows) {
    const [k1, k2] = md5path(r.keyOf ?? `${r.parent}/${r.name}`);
    const [p1, p2] = md5path(r.parent);
    let hash: Buffer | null = null;
    let size = 0;
    if (r.type === 'file') {
      const content = Buffer.from('planted\n');
      const obj = compressBuffer(content);
      fs.mkdirSync(path.join(repo, 'data', obj.hash.slice(0, 2)), { recursive: true });
      fs.writeFileSync(path.join(repo, objectPath(obj.hash)), obj.compressed);
      hash = Buffer.from(obj.hash, 'hex');
      size = content.length;
    }
    if (r.type === 'symlink') size = Buffer.byteLength(r.target!);
    if (r.type === 'dir') size = 4096;
    const flags = r.type === 'dir' ? Flags.Dir : r.type === 'symlink' ? Flags.File | Flags.Link : Flags.File;
    const mode = r.mode ?? (r.type === 'dir' ? 0o40755 : r.type === 'symlink' ? 0o120777 : 0o100644);
    ins.run(k1, k2, p1, p2, r.type === 'dir' ? 2 : 1, hash, size, mode, 1_700_000_000, flags, r.name, r.target ?? null, r.uid ?? 0, r.uid ?? 0);
  }
  const bytes = db.serialize();
  db.close();
  const cat = zlib.deflateSync(bytes);
  const hash = createHash('sha1').update(cat).digest('hex');
  fs.mkdirSync(path.join(repo, 'data', hash.slice(0, 2)), { recursive: true });
  fs.writeFileSync(path.join(repo, objectPath(hash, 'C')), cat);
  const repoKey = createPrivateKey(fs.readFileSync(path.join(keys, `${NAME}.key`)));
  fs.writeFileSync(mfile, signManifest({ ...manifest, rootHash: hash, rootSize: bytes.length }, repoKey));
  return repo;
}

/** Names, types, modes, owners and link targets of everything in `root` (itself included). */
function listing(root: string): string {
  return execFileSync('find', [root, '-printf', '%P %y %m %U %G %l\\n'], { encoding: 'utf8' }).split('\n').sort().join('\n');
}

/** `listing` of a sentinel without the destination inside it: what a checkout must never change. */
function outside(s: { root: string }): string {
  return listing(s.root).split('\n').filter((l) => !/^dest[ /]/.test(l)).join('\n');
}

/** A sentinel directory (0755 root) holding a pre-existing directory and file; the destination goes inside. */
function sentinel(): { root: string; existing: string; dest: string; before: string } {
  const root = fresh('sentinel');
  fs.mkdirSync(path.join(root, 'existing'), { recursive: true });
  fs.chmodSync(root, 0o755);
  fs.chmodSync(path.join(root, 'existing'), 0o750);
  fs.writeFileSync(path.join(root, 'existing', 'file'), 'keep\n');
  return { root, existing: path.join(root, 'existing'), dest: path.join(root, 'dest'), before: listing(root) };
}

const BAD_NAMES: [string, ForgedRow[], RegExp][] = [
  ['a name with "/" below a symlink to outside', [{ parent: '', name: 'link', type: 'symlink', target: '' }, { parent: '', name: 'link/planted', type: 'dir', mode: 0o40777 }], /"link\/planted"/],
  ['a name "../escape"', [{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: '../escape', type: 'dir' }], /"\.\.\/escape"/],
  ['a name ".."', [{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: '..', type: 'dir', mode: 0o40777, uid: OTHER_UID }], /"\.\."/],
  ['a name "."', [{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: '.', type: 'dir', mode: 0o40777, uid: OTHER_UID }], /"\."/],
  ['an empty name', [{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: '', type: 'file' }], /empty entry name/],
  ['a name with a NUL', [{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: 'a\0b', type: 'file' }], /NUL/],
  ['an md5path key that is not the path', [{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: 'good', type: 'file', keyOf: '/elsewhere/good' }], /\/sub\/good.*md5path/],
];

describe('forged catalogs re-signed with the repository key', () => {
  for (const [what, rows, names] of BAD_NAMES) {
    it(`${what}: verify names it, checkout (also --path) exits 2 and touches nothing outside`, async () => {
      const s = sentinel();
      const existing = rows.map((r) => (r.type === 'symlink' ? { ...r, target: s.existing } : r));
      const repo = forge(existing);
      // verify: exit 1, naming the entry
      const v = await verifyRepository(repo);
      expect(v.ok).toBe(false);
      expect(v.problems.map((p) => `${p.where}: ${p.problem}`).join('\n')).toMatch(names);
      for (const extra of [[], ['--path', 'sub']]) {
        const t = sentinel(); // its own sentinel, so each run starts from a missing destination
        const r = gf(['repo', 'checkout', forge(rows.map((x) => (x.type === 'symlink' ? { ...x, target: t.existing } : x))), t.dest, ...extra]);
        expect(outside(t), `${extra.join(' ')}: changed outside the destination`).toBe(t.before);
        expect(fs.existsSync(t.dest), `${extra.join(' ')}: the destination was created`).toBe(false);
        expect(r.code, `${extra.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(names);
      }
      // the in-process API refuses as well (a UsageError), and reading through the reader too
      await expect(checkout(repo, s.dest, { path: 'sub' })).rejects.toBeInstanceOf(UsageError);
      expect(gf(['repo', 'ls', repo, 'sub']).code).toBe(2);
      expect(listing(s.root)).toBe(s.before);
    });
  }

  it('a genuine repository with the same shape checks out (the checks refuse only bad rows)', async () => {
    const s = sentinel();
    const repo = forge([{ parent: '', name: 'sub', type: 'dir' }, { parent: '/sub', name: 'ok', type: 'file' }, { parent: '', name: 'link', type: 'symlink', target: 'sub/ok' }]);
    const r = gf(['repo', 'checkout', repo, s.dest, '--path', 'sub']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(s.dest, 'ok'), 'utf8')).toBe('planted\n');
  });

  it('--path with ".." is bad usage (exit 2), and so are `repo cat` and `repo ls` with ".."', () => {
    const s = sentinel();
    for (const args of [['checkout', pristine, s.dest, '--path', '../..'], ['cat', pristine, '../x'], ['ls', pristine, 'a/../../b']]) {
      const r = gf(['repo', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/escapes the repository/);
      expect(r.stderr).toMatch(/\.\./);
    }
    expect(listing(s.root)).toBe(s.before);
  });
});

describe('trust anchor of a local repository', () => {
  /** A repository whose config names keys that lie inside it (what a stranger would hand over). */
  async function selfKeyed(): Promise<string> {
    const repo = fresh('selfkeyed');
    const k = `${repo}-keys`;
    await initRepository(repo, { name: NAME, keysDir: k });
    const inside = path.join(repo, '.gridforge', 'keys');
    fs.renameSync(k, inside);
    const cfgFile = path.join(repo, '.gridforge', 'config.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), keysDir: inside }));
    return repo;
  }

  it('a config naming a key inside the repository is not trusted by that alone', async () => {
    const repo = await selfKeyed();
    const v = gf(['repo', 'verify', repo]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/inside the repository/);
    const s = sentinel();
    const c = gf(['repo', 'checkout', repo, s.dest]);
    expect(c.code, c.stderr).toBe(2);
    expect(c.stderr).toMatch(/no trusted master public key.*inside the repository.*--public-key/s);
    expect(gf(['repo', 'ls', repo]).code).toBe(2);
    expect(listing(s.root)).toBe(s.before);
    // through a symlink outside that resolves inside: the same
    const link = `${repo}-linked-keys`;
    fs.symlinkSync(path.join(repo, '.gridforge', 'keys'), link);
    const cfgFile = path.join(repo, '.gridforge', 'config.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), keysDir: link }));
    await expect(openRepository(repo)).rejects.toThrow(/inside the repository/);
    // the caller may still decide to trust that key explicitly
    const ok = gf(['repo', 'checkout', repo, s.dest, '--public-key', path.join(repo, '.gridforge', 'keys', `${NAME}.pub`)]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('keys owned by another uid, or writable by others, are not an anchor; <repo>.keys/ beside it is', async () => {
    const repo = fresh('anchors');
    const k = `${repo}-keys`;
    await initRepository(repo, { name: NAME, keysDir: k });
    expect((await verifyRepository(repo)).ok).toBe(true);
    execFileSync('chown', ['-R', String(OTHER_UID), k]);
    const v = await verifyRepository(repo);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.problem).join('\n')).toMatch(new RegExp(`belongs to uid ${OTHER_UID}`));
    execFileSync('chown', ['-R', '0', k]);
    fs.chmodSync(k, 0o777);
    await expect(openRepository(repo)).rejects.toThrow(/writable by group or others/);
    fs.chmodSync(k, 0o700);
    // moved beside the repository (the init default) it is found there even if the config names nothing usable
    fs.renameSync(k, `${repo}.keys`);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });
});

describe('setuid and setgid in checkouts', () => {
  it('are stripped by default and kept with --keep-setuid', async () => {
    const repo = fresh('suid');
    await initRepository(repo, { name: NAME, keysDir: `${repo}-keys` });
    const tx = openTransaction(repo, { onProgress: () => {} });
    await tx.mkdir('bin', { mode: 0o2755, uid: 0, gid: 0, mtime: 1_700_000_000 });
    await tx.putFile('bin/su', Buffer.from('#!/bin/sh\n'), { mode: 0o6755, uid: 0, gid: 0, mtime: 1_700_000_000 });
    await tx.putFile('bin/sticky', Buffer.from('x'), { mode: 0o1755, uid: 0, gid: 0, mtime: 1_700_000_000 });
    await tx.commit();
    const plain = fresh('co');
    const r1 = gf(['repo', 'checkout', repo, plain]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(fs.statSync(path.join(plain, 'bin/su')).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(plain, 'bin')).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(plain, 'bin/sticky')).mode & 0o7777).toBe(0o1755);
    const kept = fresh('co');
    const r2 = gf(['repo', 'checkout', repo, kept, '--keep-setuid']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(fs.statSync(path.join(kept, 'bin/su')).mode & 0o7777).toBe(0o6755);
    expect(fs.statSync(path.join(kept, 'bin')).mode & 0o7777).toBe(0o2755);
  });
});

describe('repo init and its keys directory', () => {
  it('refuses a keys directory owned by another uid or writable by group/others, changing nothing', () => {
    for (const [setup, msg] of [[(k: string) => fs.chownSync(k, OTHER_UID, 0), /belongs to uid 4242/], [(k: string) => fs.chmodSync(k, 0o777), /writable by group or others/], [(k: string) => fs.chmodSync(k, 0o770), /writable by group or others/]] as const) {
      const k = fresh('keys');
      fs.mkdirSync(k, { mode: 0o700 });
      setup(k);
      const repo = fresh('repo');
      const r = gf(['repo', 'init', repo, '--name', NAME, '--keys', k]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toContain(k);
      expect(fs.readdirSync(k)).toEqual([]);
      expect(fs.existsSync(repo)).toBe(false);
    }
  });

  it('imports an existing key set only with --import-keys', () => {
    const k = fresh('keys');
    const r1 = fresh('repo');
    expect(gf(['repo', 'init', r1, '--name', NAME, '--keys', k]).code).toBe(0);
    const r2 = fresh('repo');
    const refused = gf(['repo', 'init', r2, '--name', NAME, '--keys', k]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already holds a key set.*--import-keys/s);
    expect(fs.existsSync(r2)).toBe(false);
    const ok = gf(['repo', 'init', r2, '--name', NAME, '--keys', k, '--import-keys', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).keysCreated).toBe(false);
  });

  it('a symlink planted at a key file path is not followed', () => {
    for (const file of [`${NAME}.masterkey`, `${NAME}.crt`]) {
      const k = fresh('keys');
      fs.mkdirSync(k, { mode: 0o700 });
      const victim = fresh('victim');
      fs.symlinkSync(victim, path.join(k, file)); // dangling: the old existence check did not see it
      const repo = fresh('repo');
      const r = gf(['repo', 'init', repo, '--name', NAME, '--keys', k]);
      expect(r.code, r.stderr).toBe(2);
      expect(fs.existsSync(victim)).toBe(false);
      expect(fs.readlinkSync(path.join(k, file))).toBe(victim);
      expect(fs.existsSync(repo)).toBe(false);
    }
  });
});

describe('temporaries have random names', () => {
  /** A symlink at an old predictable temporary name, pointing at a victim directory or file. */
  function plant(at: string, victimIsDir: boolean): { check: () => void } {
    const victim = fresh('victim');
    if (victimIsDir) {
      fs.mkdirSync(victim);
      fs.writeFileSync(path.join(victim, 'precious'), 'keep\n');
    } else fs.writeFileSync(victim, 'keep\n');
    fs.symlinkSync(victim, at);
    const before = listing(victim);
    return {
      check: () => {
        expect(fs.lstatSync(at).isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(at)).toBe(victim);
        expect(listing(victim)).toBe(before);
        if (!victimIsDir) expect(fs.readFileSync(victim, 'utf8')).toBe('keep\n');
      },
    };
  }

  it('checkout, init and the head writer never touch a symlink at the old names', async () => {
    const dest = fresh('co');
    const co = plant(`${dest}.checkout-${process.pid}.tmp`, true);
    await checkout(pristine, dest);
    co.check();
    expect(fs.existsSync(path.join(dest, '.gridforge'))).toBe(false);

    const repo = fresh('repo');
    const init = plant(`${repo}.init-${process.pid}.tmp`, true);
    await initRepository(repo, { name: NAME, keysDir: `${repo}-keys` });
    init.check();

    const manifestTmp = plant(path.join(repo, `.cvmfspublished.${process.pid}.tmp`), false);
    const whitelistTmp = plant(path.join(repo, `.cvmfswhitelist.${process.pid}.tmp`), false);
    const reflogTmp = plant(path.join(repo, '.gridforge', 'reflog.next.tmp'), false);
    const src = fresh('src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'content\n');
    await publishTree(repo, src, 'x', { onProgress: () => {} });
    for (const p of [manifestTmp, whitelistTmp, reflogTmp]) p.check();
    expect(fs.lstatSync(path.join(repo, '.cvmfspublished')).isFile()).toBe(true);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });
});
