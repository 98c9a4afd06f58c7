/**
 * The stock CernVM-FS tools as the oracle for what gridforge writes (test/support/stock-cvmfs.ts
 * finds them: PATH or GRIDFORGE_CVMFS_BIN; skipped, with a line in the output, when absent). One
 * repository grows through every shape the suite can make quickly; after each revision:
 *   1. the Stratum-0, served by `gridforge repo serve`, mounted by `cvmfs2` = `gridforge repo checkout`
 *      (names, types, modes, owners, sizes, link counts, hard-link groups, symlink targets, mtimes,
 *      sha256 of every file) and the published xattrs (getfattr on the mount);
 *   2. `cvmfs_swissknife pull` (as cvmfs_server snapshot calls it) follows into a Stratum-1 replica,
 *      served by a plain static server, mounted by `cvmfs2` = the same checkout; tags reach it;
 *   3. `cvmfs_swissknife check -c` on the Stratum-0 (over HTTP: signatures too) and the replica
 *      reports nothing; `cvmfs_swissknife lsrepo` lists the catalogs gridforge wrote on both.
 * Without root or /dev/fuse only the swissknife steps run (the reason is printed).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepository, openTransaction } from '../../cvmfs-publish/index.ts';
import {
  checkRepository, findStockCvmfs, listCatalogs, mountStock, pullReplica, replicaSkeleton, run, serveStatic, skipNote, startServer,
  type Mounted, type Served, type StockCvmfs,
} from '../support/stock-cvmfs.ts';
import { CLI, gf, makeTree, rmrf, tmpDir } from './helpers.ts';
import { layerTar, legacyArchive } from '../images/flatten/helpers.ts';

const FQRN = 'stock.gridforge.test';
const ARCH = 'el9-x86_64';
const I386_CACHE = process.env.GRIDFORGE_I386_CACHE ?? '/var/cache/gridforge/i386';

const tools = findStockCvmfs();
if (!tools) skipNote('test/cvmfs-publish/stock-tools.test.ts (cvmfs2 mounts of Stratum-0 and replica, swissknife pull and check)');
const noMount = tools?.mountBlocker;
if (tools && noMount) console.log(`stock cvmfs tools found but no FUSE mount possible (${noMount}): skipped the cvmfs2 mounts; swissknife pull and check still run`);

let dir: string;
let repo: string;
let pub: string;
let replica: string;
let s0: Served | undefined;
let s1: Served | undefined;
let replicaStarted = false;
let mountCount = 0;
const mounts: Mounted[] = [];

function cli(args: string[]): string {
  const r = gf(args);
  if (r.code !== 0) throw new Error(`gridforge ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `gridforge repo checkout` of the current revision or a tag, setuid bits kept (the mount shows them). */
function checkoutOf(tag?: string): string {
  const dest = path.join(dir, `co-${tag ?? 'head'}-${Date.now()}`);
  cli(['repo', 'checkout', repo, dest, '--keep-setuid', ...(tag ? ['--tag', tag] : [])]);
  return dest;
}

interface Seen {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  nlink: number;
  size?: number;
  mtime?: number;
  target?: string;
  sha256?: string;
  /** the other names of a hard-linked file, in this tree */
  links?: string;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Everything a reader of the tree sees, by relative path (async: no read of the mount blocks this process). */
async function describeTree(root: string): Promise<Record<string, Seen>> {
  const out: Record<string, Seen> = {};
  const inodes = new Map<number, string[]>();
  async function visit(rel: string): Promise<void> {
    const abs = path.join(root, rel);
    const st = await fsp.lstat(abs);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
    const seen: Seen = { type, mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid, nlink: st.nlink };
    if (type === 'file') {
      Object.assign(seen, { size: st.size, mtime: Math.floor(st.mtimeMs / 1000), sha256: await sha256(abs) });
      if (st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
    }
    if (type === 'symlink') seen.target = await fsp.readlink(abs);
    if (type === 'dir') seen.mtime = Math.floor(st.mtimeMs / 1000);
    out[rel || '/'] = seen;
    if (type === 'dir') for (const name of (await fsp.readdir(abs)).sort()) await visit(rel ? `${rel}/${name}` : name);
  }
  await visit('');
  for (const names of inodes.values()) for (const n of names) out[n].links = names.filter((m) => m !== n).sort().join(',');
  return out;
}

function treeDiff(got: Record<string, Seen>, want: Record<string, Seen>): string[] {
  const diffs: string[] = [];
  for (const p of [...new Set([...Object.keys(got), ...Object.keys(want)])].sort()) {
    const g = JSON.stringify(got[p]);
    const w = JSON.stringify(want[p]);
    if (g !== w) diffs.push(`${p}: mount ${g ?? 'absent'} / checkout ${w ?? 'absent'}`);
  }
  return diffs.slice(0, 40);
}

/** Xattrs as getfattr reads them on the mount: path -> name=hex value. */
async function mountedXattrs(root: string): Promise<Record<string, Record<string, string>>> {
  const r = await run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root]);
  if (r.code === -1) throw new Error(`getfattr is missing (Debian package attr): ${r.stderr}`);
  const out: Record<string, Record<string, string>> = {};
  let cur: Record<string, string> | undefined;
  for (const line of r.stdout.split('\n')) {
    const f = /^# file: (.*)$/.exec(line);
    if (f) out[path.relative(root, f[1]) || '/'] = cur = {};
    const kv = /^([^=#]+)=0x([0-9a-f]*)$/.exec(line);
    if (kv && cur) cur[kv[1]] = kv[2];
  }
  return out;
}

/** One xattr through getxattr: the client's magic attributes (cvmfs/magic_xattr.cc) stay readable when hidden from listxattr. */
async function xattrOf(file: string, name: string): Promise<string> {
  const r = await run('getfattr', ['-h', '--only-values', '-n', name, '--absolute-names', file]);
  if (r.code !== 0) throw new Error(`getfattr -n ${name} ${file}: ${r.stderr}`);
  return r.stdout.trim();
}

function revisionOf(repoDir: string): number {
  const head = fs.readFileSync(path.join(repoDir, '.cvmfspublished'), 'latin1').split('\n--\n')[0];
  return Number(/^S(\d+)$/m.exec(head)?.[1]);
}

/** The xattrs the repository records (gridforge's reader), in getfattr's form. */
async function publishedXattrs(tag?: string): Promise<Record<string, Record<string, string>>> {
  const r = await openRepository(repo, { publicKey: pub, tag });
  const out: Record<string, Record<string, string>> = {};
  for await (const e of r.walk('')) {
    if (!e.xattrs || !Object.keys(e.xattrs).length) continue;
    out[e.path.replace(/^\//, '') || '/'] = Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('hex')]));
  }
  return out;
}

/** Mount `url` (at `tag`) with the stock client and compare it with the checkout. */
async function compareMount(t: StockCvmfs, url: string, checkout: string, opts: { tag?: string; onMount?: (mnt: string) => Promise<void> } = {}): Promise<void> {
  const { tag } = opts;
  const workDir = path.join(dir, `mount-${++mountCount}`);
  const m = await mountStock(t, { fqrn: FQRN, url, publicKey: pub, workDir, tag });
  mounts.push(m);
  try {
    if (!tag) expect(Number(await xattrOf(m.dir, 'user.revision')), 'the revision the client mounted (magic xattr user.revision)').toBe(revisionOf(repo));
    const [got, want] = await Promise.all([describeTree(m.dir), describeTree(checkout)]);
    expect(treeDiff(got, want), `mounted ${url}${tag ? ` at tag ${tag}` : ''} vs repo checkout; client log:\n${m.log()}`).toEqual([]);
    expect(await mountedXattrs(m.dir), 'xattrs on the mount vs the catalog').toEqual(await publishedXattrs(tag));
    await opts.onMount?.(m.dir);
  } finally {
    await m.unmount();
  }
}

/** The replica's reflog checksum (cvmfs_server keeps it in the spool dir as reflog.chksum). */
const replicaReflog = () => path.join(dir, 'replica.reflog.chksum');

/** One `cvmfs_swissknife pull` into the replica: the first is an initial snapshot, later ones are incremental (-p). */
async function pull(t: StockCvmfs): Promise<void> {
  const r = await pullReplica(t, {
    fqrn: FQRN, stratum0Url: s0!.url, replicaDir: replica, replicaUrl: s1!.url, publicKey: pub,
    reflogChecksum: replicaReflog(), initial: !replicaStarted,
  });
  expect(r.code, `cvmfs_swissknife pull:\n${r.stdout}\n${r.stderr}`).toBe(0);
  replicaStarted = true;
  expect(fs.readFileSync(path.join(replica, '.cvmfspublished')).equals(fs.readFileSync(path.join(repo, '.cvmfspublished'))), 'the replica serves the Stratum-0 manifest').toBe(true);
}

/** The nested catalogs gridforge wrote (its reader), as cvmfs_swissknife lsrepo prints mount points. */
async function writtenCatalogs(): Promise<string[]> {
  const r = await openRepository(repo, { publicKey: pub });
  const out = ['/'];
  for await (const e of r.walk('')) if (e.nestedCatalog && e.path.replace(/^\/+/, '')) out.push('/' + e.path.replace(/^\/+/, ''));
  return out.sort();
}

async function catalogsAt(t: StockCvmfs, url: string): Promise<string[]> {
  const r = await listCatalogs(t, { url, fqrn: FQRN, publicKey: pub, tempDir: path.join(dir, 'tmp') });
  expect(r.code, `cvmfs_swissknife lsrepo ${url}:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.catalogs;
}

async function checkClean(t: StockCvmfs, where: string, opts: { tag?: string; reflogChecksum?: string } = {}): Promise<void> {
  const r = await checkRepository(t, { dirOrUrl: where, fqrn: FQRN, publicKey: pub, tempDir: path.join(dir, 'tmp'), ...opts });
  const said = `cvmfs_swissknife check ${where}${opts.tag ? ` -n ${opts.tag}` : ''}:\n${r.stdout}\n${r.stderr}`;
  expect(r.stderr, said).not.toMatch(/nested catalog without marker/);
  expect(r.stderr.trim(), said).toBe('');
  expect(r.code, said).toBe(0);
}

interface Shape {
  name: string;
  publish(): Promise<void>;
  /** more checks on each mount of this revision */
  onMount?(mnt: string): Promise<void>;
}

const fileMeta = (mode = 0o644) => ({ mode, uid: 0, gid: 0, mtime: 1_700_000_000 });

const SHAPES: Shape[] = [
  {
    name: 'plain `repo publish` (symlinks, setuid, hard link, unicode, empty file)',
    async publish() {
      const src = path.join(dir, 'src-plain');
      makeTree(src, 'a');
      cli(['repo', 'publish', repo, src, '--path', 'sw/base', '--tag', 'v1']);
    },
  },
  {
    name: 'hard links (transaction API)',
    async publish() {
      const tx = openTransaction(repo);
      await tx.putFile('hl/a', Buffer.from('one content, three names\n'), fileMeta());
      await tx.hardlink('hl/b', 'hl/a');
      await tx.hardlink('hl/c', 'hl/a');
      await tx.putFile('hl/alone', Buffer.from('alone\n'), fileMeta(0o600));
      await tx.commit();
    },
  },
  {
    name: 'xattrs (putFile meta.xattrs)',
    async publish() {
      const tx = openTransaction(repo);
      const xattrs = { 'user.gridforge.origin': Buffer.from('stock-tools test'), 'user.gridforge.long': Buffer.from('x'.repeat(200)) };
      await tx.putFile('xattrs/file', Buffer.from('with attributes\n'), { ...fileMeta(), xattrs });
      await tx.putFile('xattrs/exe', Buffer.from('#!/bin/sh\n'), { ...fileMeta(0o755), xattrs: { 'user.one': Buffer.from('1') } });
      await tx.commit();
    },
  },
  {
    name: 'nested catalogs by pattern (putTree containers/fs/singularity/x, files under containers/fs/singularity/direct)',
    async publish() {
      const a = path.join(dir, 'src-img-x');
      const b = path.join(dir, 'src-img-x2');
      makeTree(a, 'x');
      makeTree(b, 'y');
      const tx = openTransaction(repo);
      await tx.putTree('containers/fs/singularity/x', a);
      await tx.putTree('containers/fs/singularity/x2', b);
      // nested by DEFAULT_NEST_PATTERNS alone: files written under an image directory, no putTree
      await tx.putFile('containers/fs/singularity/direct/bin/sh', Buffer.from('#!/bin/true\n'), fileMeta(0o755));
      await tx.putFile('containers/fs/singularity/direct/etc/os-release', Buffer.from('NAME=direct\n'), fileMeta());
      await tx.commit({ tag: 'images' });
    },
  },
  {
    name: '`repo link` switch',
    async publish() {
      cli(['repo', 'link', repo, 'containers/fs/singularity/default', 'x']);
      cli(['repo', 'link', repo, 'containers/fs/singularity/default', 'x2', '--tag', 'linked']);
    },
  },
  {
    name: '`repo rollback --tag v1`',
    async publish() {
      cli(['repo', 'rollback', repo, '--tag', 'v1']);
    },
  },
  {
    name: 'a 40 MiB file (chunked)',
    async publish() {
      const src = path.join(dir, 'src-big');
      fs.mkdirSync(src);
      const text = Buffer.from(Array.from({ length: 20 << 20 }, (_, i) => 97 + ((i * 31) % 26)));
      fs.writeFileSync(path.join(src, 'big.bin'), Buffer.concat([randomBytes(20 << 20), text]));
      cli(['repo', 'publish', repo, src, '--path', 'big', '--tag', 'big']);
    },
    async onMount(mnt) {
      const chunks = Number(await xattrOf(path.join(mnt, 'big/big.bin'), 'user.chunks'));
      expect(chunks, 'the client reads big.bin as a chunked file (magic xattr user.chunks)').toBeGreaterThan(1);
    },
  },
  {
    name: '`image sandbox --repo` (two layers: whiteout, hard links across directories, setuid, a security.capability xattr)',
    async publish() {
      const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw+ep, as setcap writes it
      const layers = [
        layerTar([
          { path: 'bin/', type: 'dir' }, { path: 'bin/sh', data: '#!/bin/true\n', mode: 0o755 }, { path: 'bin/ping', data: 'ping', mode: 0o755, xattrs: { 'security.capability': cap } },
          { path: 'bin/su', data: 'su', mode: 0o4755 }, { path: 'lib/', type: 'dir' }, { path: 'lib/a.so', data: 'A'.repeat(100_000) },
          { path: 'opt/', type: 'dir' }, { path: 'opt/a-copy.so', type: 'hardlink', link: 'lib/a.so' },
        ]),
        layerTar([{ path: 'bin/.wh.su' }, { path: 'data/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 }, { path: 'data/ünï', data: 'x' }]),
      ];
      const archive = path.join(dir, 'sandbox-image.tar');
      fs.writeFileSync(archive, legacyArchive({ layers, tag: 'gfstock/sandbox:1' }));
      cli(['image', 'sandbox', archive, '--repo', repo, '--path', 'containers/fs/singularity/sandboxed']);
    },
    async onMount(mnt) {
      const root = path.join(mnt, 'containers/fs/singularity/sandboxed');
      expect(fs.existsSync(path.join(root, 'bin/su')), 'the whiteout removed bin/su').toBe(false);
      expect(fs.existsSync(path.join(root, 'workdir')) && fs.existsSync(path.join(root, 'cvmfs')), 'bind points').toBe(true);
    },
  },
  {
    name: 'JAliEn release (release jalien: /*/Packages/*/* nested by pattern)',
    async publish() {
      const jar = path.join(dir, 'alien-users.jar');
      fs.writeFileSync(jar, 'PK stand-in: the client only moves bytes\n');
      cli(['release', 'jalien', '1.0.0-1', '--jar', jar, '--repo', repo, '--arch', ARCH]);
    },
  },
];

const i386 = fs.existsSync(I386_CACHE) ? fs.readdirSync(I386_CACHE).filter((f) => f.endsWith('.deb')).map((f) => path.join(I386_CACHE, f)) : [];
const jdk = i386.find((d) => /openjdk-17-jre-headless_/.test(d));
if (jdk) {
  SHAPES.push({
    name: '32-bit Java runtime (release java32 from the cached i386 .debs)',
    async publish() {
      cli(['release', 'java32', '--jdk', jdk, '--libs', ...i386.filter((d) => d !== jdk), '--repo', repo, '--mount-prefix', `/cvmfs/${FQRN}`, '--arch', ARCH]);
    },
  });
} else if (tools) {
  console.log(`no i386 .debs in ${I386_CACHE} (scripts/fetch-i386.sh): skipped the java32 shape of the stock cvmfs check`);
}

describe.skipIf(!tools).sequential('stock cvmfs tools read what gridforge writes', () => {
  const t = tools!;

  beforeAll(async () => {
    dir = tmpDir('stock');
    repo = path.join(dir, 'repo');
    cli(['repo', 'init', repo, '--name', FQRN, '--keys', path.join(dir, 'keys')]);
    pub = path.join(dir, 'keys', `${FQRN}.pub`);
    fs.mkdirSync(path.join(dir, 'tmp'));
    replica = path.join(dir, 'stratum1');
    replicaSkeleton(replica);
    s0 = await startServer(process.execPath, [CLI, 'repo', 'serve', repo, '--port', '0', '--json'], /"url":\s*"([^"]+)"/, (m) => m[1]);
    s1 = await serveStatic(replica);
  });

  afterAll(async () => {
    for (const m of mounts) await m.unmount();
    await s0?.stop();
    await s1?.stop();
    if (dir) rmrf(dir);
  });

  for (const shape of SHAPES) {
    describe(shape.name, () => {
      let checkout: string;
      beforeAll(async () => {
        await shape.publish();
        checkout = checkoutOf();
      });

      it.skipIf(!!noMount)('cvmfs2 mounts the Stratum-0 (repo serve): the tree and xattrs = repo checkout', async () => {
        await compareMount(t, s0!.url, checkout, { onMount: shape.onMount });
      });

      it('cvmfs_swissknife pull: the Stratum-1 replica follows to this revision', async () => {
        await pull(t);
      });

      it('cvmfs_swissknife lsrepo: the catalogs of the Stratum-0 and of the replica = the nested catalogs gridforge wrote', async () => {
        const want = await writtenCatalogs();
        expect(await catalogsAt(t, s0!.url)).toEqual(want);
        expect(replicaStarted, 'no replica: the pull failed').toBe(true);
        expect(await catalogsAt(t, s1!.url)).toEqual(want);
      });

      it.skipIf(!!noMount)('cvmfs2 mounts the replica (static HTTP): the tree and xattrs = repo checkout', async () => {
        expect(replicaStarted, 'no replica: the pull failed').toBe(true);
        await compareMount(t, s1!.url, checkout, { onMount: shape.onMount });
      });

      it('cvmfs_swissknife check -c: no problems on the Stratum-0 (over HTTP: signatures too)', async () => {
        await checkClean(t, s0!.url);
      });

      it('cvmfs_swissknife check -c: no problems on the replica (with its own reflog checksum)', async () => {
        expect(replicaStarted, 'no replica: the pull failed').toBe(true);
        await checkClean(t, s1!.url, { reflogChecksum: replicaReflog() });
      });
    });
  }

  describe('tags reach the replica', () => {
    let tags: string[] = [];
    beforeAll(() => {
      tags = (JSON.parse(cli(['repo', 'tags', repo, '--json'])) as { tags: { name: string }[] }).tags.map((x) => x.name);
      tags = tags.filter((n) => n !== 'trunk' && n !== 'trunk-previous');
    });

    it('every gridforge tag is in the replica (mounted with CVMFS_REPOSITORY_TAG) and = repo checkout --tag', async () => {
      expect(tags).toEqual(expect.arrayContaining(['v1', 'images', 'linked', 'big']));
      expect(replicaStarted, 'no replica: the pull failed').toBe(true);
      for (const tag of tags) {
        await checkClean(t, s1!.url, { tag, reflogChecksum: replicaReflog() });
        if (!noMount) await compareMount(t, s1!.url, checkoutOf(tag), { tag });
      }
    });
  });
});
