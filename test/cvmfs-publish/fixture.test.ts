/**
 * The reader against a repository written by cvmfs_server 2.12, and the writer compared with it
 * field by field through independent tools (sqlite3 CLI, openssl CLI).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, openRepository, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { FIXTURE_PUB, FIXTURE_REPO, gf, inflateObject, makeTree, manifestFields, rmrf, sqlite, tmpDir } from './helpers.ts';

describe('reader on the cvmfs_server reference repository', () => {
  it('reads every file, symlink, hard link and directory with its metadata', async () => {
    const r = await openRepository(FIXTURE_REPO, { publicKey: FIXTURE_PUB });
    expect(r.revision).toBe(2);
    const all = new Map<string, Awaited<ReturnType<typeof r.stat>>>();
    for await (const e of r.walk('')) all.set(e.path, e);
    expect([...all.keys()].sort()).toEqual([
      '/', '/containers', '/containers/fs', '/containers/fs/singularity', '/containers/fs/singularity/alma9-test',
      '/containers/fs/singularity/alma9-test/.cvmfscatalog', '/containers/fs/singularity/alma9-test/cvmfs',
      '/containers/fs/singularity/alma9-test/etc-os', '/containers/fs/singularity/alma9-test/workdir',
      '/containers/fs/singularity/default', '/sw', '/sw/abs-link', '/sw/bin', '/sw/bin/readme-link', '/sw/bin/true',
      '/sw/doc', '/sw/doc/README', '/sw/doc/random.bin', '/sw/doc/small', '/sw/doc/small-hardlink', '/sw/doc/ünïcødé', '/sw/empty',
    ].sort());
    expect((await r.readFile('/sw/doc/README')).toString()).toBe('hello cvmfs\n');
    expect((await r.readFile('/sw/doc/small')).toString()).toBe('abc');
    expect((await r.readFile('/sw/doc/small-hardlink')).toString()).toBe('abc');
    expect((await r.readFile('/sw/doc/ünïcødé')).toString()).toBe('x\n');
    expect((await r.readFile('/sw/doc/random.bin')).length).toBe(102400);
    const t = await r.readFile('/sw/bin/true');
    expect(t.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(all.get('/sw/bin/true')!.mode).toBe(0o104755);
    expect(all.get('/sw/abs-link')!.target).toBe('/usr/share/zoneinfo/UTC');
    expect(all.get('/sw/bin/readme-link')!.target).toBe('../doc/README');
    expect(all.get('/containers/fs/singularity/default')!.target).toBe('alma9-test');
    expect(all.get('/containers/fs/singularity/alma9-test')!.nestedCatalog).toBe(true);
    expect((await r.readFile('/containers/fs/singularity/alma9-test/etc-os')).length).toBe(3);
    // no xattrs in the fixture: none reported
    expect([...all.values()].every((e) => e!.xattrs === undefined)).toBe(true);
    const tags = (await r.tags()).map((x) => `${x.name}@${x.revision}`).sort();
    expect(tags).toEqual(['generic-2026-11-22T02:59:25Z@1', 'trunk-previous@1', 'trunk@2', 'v1@2']);
    const old = await openRepository(FIXTURE_REPO, { publicKey: FIXTURE_PUB, tag: 'trunk-previous' });
    expect(old.revision).toBe(1);
  });

  it('verify accepts it (signatures with its public key, objects, catalog invariants)', async () => {
    const v = await verifyRepository(FIXTURE_REPO, { publicKey: FIXTURE_PUB });
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.checked.catalogs).toBe(3);
    const cli = gf(['repo', 'verify', FIXTURE_REPO, '--public-key', FIXTURE_PUB, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, name: 'ref.example.org', revision: 2 });
    // without a key there is nothing to check the whitelist against: verify fails and says so
    const nokey = gf(['repo', 'verify', FIXTURE_REPO]);
    expect(nokey.code).toBe(1);
    expect(nokey.stdout).toMatch(/\.cvmfswhitelist: no master public key/);
  });

  it('refuses it with a wrong master key', async () => {
    const other = tmpDir('wrongkey');
    try {
      await initRepository(path.join(other, 'r'), { name: 'other.example.org' });
      await expect(openRepository(FIXTURE_REPO, { publicKey: path.join(other, 'r.keys/other.example.org.pub') })).rejects.toThrow(/whitelist/);
    } finally {
      rmrf(other);
    }
  });
});

describe('writer compared with the reference repository', () => {
  let dir: string;
  let repo: string;
  const refRoot = () => manifestFields(FIXTURE_REPO).C;
  beforeAll(async () => {
    dir = tmpDir('cmp');
    repo = path.join(dir, 'repo');
    await initRepository(repo, { name: 'cmp.example.org' });
    const src = path.join(dir, 'src');
    makeTree(src);
    await publishTree(repo, src, 'containers/fs/singularity/alma9-test', { tag: 'v1', message: 'first' });
  });
  afterAll(() => rmrf(dir));

  it('catalogs: same schema SQL, property keys, statistics counters, page size (sqlite3 CLI)', () => {
    const mine = manifestFields(repo);
    const a = inflateObject(repo, mine.C, 'C', path.join(dir, 'mine-root.db'));
    const b = inflateObject(FIXTURE_REPO, refRoot(), 'C', path.join(dir, 'ref-root.db'));
    expect(sqlite(a, '.schema')).toBe(sqlite(b, '.schema'));
    expect(sqlite(a, 'PRAGMA page_size')).toBe(sqlite(b, 'PRAGMA page_size'));
    expect(sqlite(a, 'select key from properties order by key')).toBe(sqlite(b, 'select key from properties order by key'));
    expect(sqlite(a, 'select counter from statistics order by counter')).toBe(sqlite(b, 'select counter from statistics order by counter'));
    expect(sqlite(a, "select value from properties where key in ('schema','schema_revision','TTL') order by key")).toBe(sqlite(b, "select value from properties where key in ('schema','schema_revision','TTL') order by key"));
    // column types per kind of row, as cvmfs writes them (NULL hash for dirs/links, 20-byte blob for files, NULL mtimens/xattr, '' symlink)
    const kinds = "select flags, typeof(hash), coalesce(length(hash),0), typeof(mtimens), typeof(xattr), typeof(symlink), typeof(name) from catalog group by flags order by flags";
    const refKinds = sqlite(b, kinds);
    for (const line of sqlite(a, kinds).split('\n')) expect(refKinds.split('\n')).toContain(line);
    // root row: md5path of '' and parent 0 0
    expect(sqlite(a, "select md5path_1, md5path_2, parent_1, parent_2, hardlinks from catalog where name = ''")).toBe('338333539836370388|9098107892288553193|0|0|3');
    // the nested catalog: root_prefix, nested-root flag 33, mountpoint flag 3 in the parent, hash and size in the parent
    const [npath, nhash, nsize] = sqlite(a, 'select path, sha1, size from nested_catalogs').split('|');
    expect(npath).toBe('/containers/fs/singularity/alma9-test');
    const n = inflateObject(repo, nhash, 'C', path.join(dir, 'mine-nested.db'));
    expect(fs.statSync(n).size).toBe(Number(nsize));
    expect(sqlite(n, "select value from properties where key='root_prefix'")).toBe(npath);
    expect(sqlite(n, "select flags from catalog where name='alma9-test'")).toBe('33');
    expect(sqlite(a, "select flags from catalog where name='alma9-test'")).toBe('3');
    expect(sqlite(n, "select count(*) from catalog where name='.cvmfscatalog' and flags=4")).toBe('1');
    // the same mountpoint path gives the same md5path keys as in the reference
    expect(sqlite(a, "select md5path_1, md5path_2 from catalog where name='alma9-test'")).toBe(sqlite(b, "select md5path_1, md5path_2 from catalog where name='alma9-test'"));
  });

  it('catalog rows: md5path/parent keys, link counts, hardlink groups, symlink sizes, counters (sqlite3 CLI)', () => {
    const mine = manifestFields(repo);
    const root = inflateObject(repo, mine.C, 'C', path.join(dir, 'mine-root2.db'));
    const nhash = sqlite(root, 'select sha1 from nested_catalogs');
    const n = inflateObject(repo, nhash, 'C', path.join(dir, 'mine-nested2.db'));
    const rows = sqlite(n, "select name, md5path_1, md5path_2, parent_1, parent_2, hardlinks, size, flags, symlink, mode from catalog").split('\n').map((l) => l.split('|'));
    const byName = new Map(rows.map((r) => [r[0], r]));
    // md5path recomputed with openssl md5 (independent of node)
    const md5 = (p: string) => {
      const hex = execFileSync('openssl', ['md5', '-r'], { input: p }).toString().split(' ')[0];
      const buf = Buffer.from(hex, 'hex');
      return [buf.readBigInt64LE(0).toString(), buf.readBigInt64LE(8).toString()];
    };
    const base = '/containers/fs/singularity/alma9-test';
    expect(byName.get('os-release')!.slice(1, 3)).toEqual(md5(`${base}/etc/os-release`));
    expect(byName.get('os-release')!.slice(3, 5)).toEqual(md5(`${base}/etc`));
    expect(byName.get('ünïcødé')!.slice(1, 3)).toEqual(md5(`${base}/ünïcødé`));
    // directory link counts: 2 + subdirectories (root of the image: etc, bin, cvmfs, deep)
    expect(byName.get('alma9-test')![5]).toBe('6');
    expect(byName.get('cvmfs')![5]).toBe('2');
    // hard links: same group, count 2 -> (g << 32) | 2
    const hl = BigInt(byName.get('tool')![5]);
    expect(hl & 0xffffffffn).toBe(2n);
    expect(hl >> 32n).toBeGreaterThan(0n);
    expect(byName.get('tool-hardlink')![5]).toBe(byName.get('tool')![5]);
    expect(byName.get('tool')![9]).toBe(String(0o104755));
    // symlinks: flags 12, size = target length, target verbatim
    expect(byName.get('localtime')!.slice(6, 9)).toEqual(['23', '12', '/usr/share/zoneinfo/UTC']);
    expect(byName.get('rel-link')!.slice(6, 9)).toEqual(['17', '12', '../etc/os-release']);
    // statistics equal to what sqlite counts
    expect(sqlite(n, "select value from statistics where counter='self_regular'")).toBe(sqlite(n, 'select count(*) from catalog where flags = 4'));
    expect(sqlite(n, "select value from statistics where counter='self_dir'")).toBe(sqlite(n, 'select count(*) from catalog where flags & 1'));
    expect(sqlite(n, "select value from statistics where counter='self_symlink'")).toBe(sqlite(n, 'select count(*) from catalog where flags = 12'));
    expect(sqlite(n, "select value from statistics where counter='self_file_size'")).toBe(sqlite(n, 'select sum(size) from catalog where flags = 4'));
    expect(sqlite(root, "select value from statistics where counter='subtree_regular'")).toBe(sqlite(n, "select value from statistics where counter='self_regular'"));
    expect(sqlite(root, "select value from statistics where counter='self_nested'")).toBe('1');
    // identical content stored once
    expect(sqlite(n, "select count(distinct hex(hash)) from catalog where name in ('shared', 'shared-copy')")).toBe('1');
  });

  it('manifest: same fields in the same order; signature verifies with openssl against the certificate object', () => {
    const mine = fs.readFileSync(path.join(repo, '.cvmfspublished'));
    const ref = fs.readFileSync(path.join(FIXTURE_REPO, '.cvmfspublished'));
    const keysOf = (raw: Buffer) => raw.subarray(0, raw.indexOf('\n--\n')).toString().split('\n').map((l) => l[0]).join('');
    expect(keysOf(mine)).toBe(keysOf(ref));
    const f = manifestFields(repo);
    expect(f.R).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(f.S).toBe('2');
    for (const [label, raw, fields, r] of [['mine', mine, f, repo], ['ref', ref, manifestFields(FIXTURE_REPO), FIXTURE_REPO]] as const) {
      const i = raw.indexOf('\n--\n');
      const body = raw.subarray(0, i + 1);
      const hex = raw.subarray(i + 4, i + 44).toString();
      const sig = raw.subarray(i + 45);
      const d = path.join(dir, label);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'body'), body);
      fs.writeFileSync(path.join(d, 'hex'), hex);
      fs.writeFileSync(path.join(d, 'sig'), sig);
      inflateObject(r, fields.X, 'X', path.join(d, 'cert.pem'));
      execFileSync('openssl', ['x509', '-in', path.join(d, 'cert.pem'), '-pubkey', '-noout', '-out', path.join(d, 'cert.pub')]);
      expect(execFileSync('openssl', ['sha1', '-r', path.join(d, 'body')]).toString().split(' ')[0]).toBe(hex);
      const out = execFileSync('openssl', ['dgst', '-sha1', '-verify', path.join(d, 'cert.pub'), '-signature', path.join(d, 'sig'), path.join(d, 'hex')]).toString();
      expect(out.trim()).toBe('Verified OK');
      // the reflog hash Y is the SHA-1 of .cvmfsreflog
      expect(execFileSync('openssl', ['sha1', '-r', path.join(r, '.cvmfsreflog')]).toString().split(' ')[0]).toBe(fields.Y);
    }
  });

  it('whitelist: same layout; raw PKCS#1 signature verifies with openssl rsautl -raw against the master key', () => {
    const check = (r: string, pub: string, label: string) => {
      const raw = fs.readFileSync(path.join(r, '.cvmfswhitelist'));
      const i = raw.indexOf('\n--\n');
      const lines = raw.subarray(0, i).toString().split('\n');
      expect(lines[0]).toMatch(/^\d{14}$/);
      expect(lines[1]).toMatch(/^E\d{14}$/);
      expect(lines[2]).toMatch(/^N[a-z.]+$/);
      expect(lines[3]).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
      const hex = raw.subarray(i + 4, i + 44).toString();
      const sigFile = path.join(dir, `${label}.wlsig`);
      fs.writeFileSync(sigFile, raw.subarray(i + 45));
      const dec = execFileSync('openssl', ['rsautl', '-verify', '-pubin', '-inkey', pub, '-in', sigFile], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      expect(dec).toBe(hex);
      // the raw decryption is PKCS#1 type 1 padding + the hex text itself (no DigestInfo)
      const rawDec = execFileSync('openssl', ['rsautl', '-verify', '-raw', '-pubin', '-inkey', pub, '-in', sigFile], { stdio: ['ignore', 'pipe', 'ignore'] });
      expect(rawDec.subarray(0, 2).toString('hex')).toBe('0001');
      expect(rawDec.subarray(rawDec.length - 41).toString('latin1')).toBe(`\0${hex}`);
      // fingerprint = SHA-1 of the certificate (DER)
      const f = manifestFields(r);
      const pem = inflateObject(r, f.X, 'X', path.join(dir, `${label}.crt`));
      const fp = execFileSync('openssl', ['x509', '-in', pem, '-noout', '-fingerprint', '-sha1']).toString().trim().split('=')[1];
      expect(lines[3]).toBe(fp);
    };
    check(FIXTURE_REPO, FIXTURE_PUB, 'ref');
    check(repo, `${repo}.keys/cmp.example.org.pub`, 'mine');
  });

  it('history and reflog: same schema; trunk, trunk-previous and the named tag; reflog lists every catalog', () => {
    const f = manifestFields(repo);
    const rf = manifestFields(FIXTURE_REPO);
    const h = inflateObject(repo, f.H, 'H', path.join(dir, 'h.db'));
    const rh = inflateObject(FIXTURE_REPO, rf.H, 'H', path.join(dir, 'rh.db'));
    expect(sqlite(h, '.schema')).toBe(sqlite(rh, '.schema'));
    expect(sqlite(h, "select key || '=' || value from properties where key in ('schema','schema_revision') order by key")).toBe(sqlite(rh, "select key || '=' || value from properties where key in ('schema','schema_revision') order by key"));
    expect(sqlite(h, 'select * from branches')).toBe(sqlite(rh, 'select * from branches'));
    expect(sqlite(h, 'select name, revision, hash from tags order by name').split('\n')).toEqual([`trunk|2|${f.C}`, expect.stringMatching(/^trunk-previous\|1\|/), `v1|2|${f.C}`]);
    expect(sqlite(h, "select description, branch, channel from tags where name='v1'")).toBe('first||0');
    expect(sqlite(path.join(repo, '.cvmfsreflog'), '.schema')).toBe(sqlite(path.join(FIXTURE_REPO, '.cvmfsreflog'), '.schema'));
    const refs = sqlite(path.join(repo, '.cvmfsreflog'), 'select hash || ":" || type from refs').split('\n');
    expect(refs).toContain(`${f.C}:0`);
    expect(refs).toContain(`${f.X}:1`);
    expect(refs).toContain(`${f.H}:2`);
    expect(refs).toContain(`${f.M}:3`);
    expect(fs.readFileSync(path.join(repo, '.cvmfs_master_replica'))).toEqual(fs.readFileSync(path.join(FIXTURE_REPO, '.cvmfs_master_replica')));
    for (let i = 0; i < 256; i++) expect(fs.existsSync(path.join(repo, 'data', i.toString(16).padStart(2, '0')))).toBe(true);
    // keys never inside the served tree
    const served = execFileSync('find', [repo, '-type', 'f'], { encoding: 'utf8' });
    expect(served).not.toMatch(/\.(key|masterkey|crt)$/m);
  });

  it('objects are zlib streams named by the SHA-1 of the compressed bytes', () => {
    const f = manifestFields(repo);
    const file = path.join(repo, 'data', f.C.slice(0, 2), `${f.C.slice(2)}C`);
    expect(execFileSync('openssl', ['sha1', '-r', file]).toString().split(' ')[0]).toBe(f.C);
    expect(fs.readFileSync(file).subarray(0, 2).toString('hex')).toBe('789c');
  });
});
