/**
 * The open correctness bugs of other flatteners (go-containerregistry's mutate.Extract behind
 * `crane export/flatten`, goldmann/docker-squash), turned into permanent oracle fixtures: each
 * reproducer is an image, built by Docker where Docker can produce the case and hand-made (layer
 * tars loaded with `docker load`) where it cannot, and for each one `image flatten` (archive and
 * engine), `image sandbox` and `image sync` (pushed to a local docker-registry with skopeo, synced
 * into a repository, checked out) must equal Docker's own `docker export` of the same image, with
 * only the documented sandbox / repository differences (images/sandbox/README.md,
 * release/sandbox-to-repo.ts). Every test names the upstream issue it reproduces. The images sit
 * on a tiny base (peer-fixtures.ts) so the whole file stays within its time budget.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { flattenToArchive, flattenToEngine } from '../../../images/flatten/index.ts';
import { writeSandbox } from '../../../images/sandbox/index.ts';
import { checkout, initRepository } from '../../../cvmfs-publish/index.ts';
import { syncImages } from '../../../release/image-sync/index.ts';
import { catalogXattr } from '../../cvmfs-publish/helpers.ts';
import { startRegistry, type Registry } from '../registry/helpers.ts';
import { diffTrees, dockerBuild, exportTree, layerTar, PREFIX, removeImages, treeFromDir, treeFromTarFile, type Tree } from './helpers.ts';
import { buildTinyBase, capsOfDir, exportWithXattrs, extractWithXattrs, layerOf, loadHandMade, rawEntries, repoExpect, sandboxExpect } from './peer-fixtures.ts';

const BASE = `${PREFIX}-peerbase:${process.pid}`;
const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

interface Fixture {
  /** Short name: image repository, test names. */
  key: string;
  /** The upstream issue this reproduces. */
  issue: string;
  what: string;
  /** Dockerfile lines after `FROM <tiny base>` (or after FROM parent). */
  dockerfile?: string;
  /** Dockerfile lines of a parent image the fixture is built FROM. */
  parent?: string;
  /** Hand-made layers (Docker cannot produce the case itself). */
  layers?: () => Buffer[];
  /** The fixture really exercises the case: Docker's own export, and the layer entries of `docker save`. */
  check: (exported: Tree, layerEntries: string[][]) => void;
}

const has = (layers: string[][], entry: string) => layers.some((l) => l.includes(entry));

const FIXTURES: Fixture[] = [
  {
    key: 'ggcr-977',
    issue: 'google/go-containerregistry#977',
    what: 'hard links whose target (the first name in the layer) a later layer removes or replaces by a symlink',
    dockerfile: `
RUN mkdir -p /t/usr/bin /t/usr/libexec/git-core && cp /bin/cat /t/usr/bin/git && ln /t/usr/bin/git /t/usr/libexec/git-core/git && echo a > /t/a && ln /t/a /t/b
RUN rm /t/usr/bin/git && ln -s /usr/libexec/git-core/git /t/usr/bin/git && rm /t/a`,
    check: (t, l) => {
      expect(has(l, '1 t/usr/libexec/git-core/git -> t/usr/bin/git')).toBe(true);
      expect(has(l, '1 t/b -> t/a')).toBe(true);
      expect(t.get('t/usr/bin/git')?.link).toBe('/usr/libexec/git-core/git');
      expect(t.get('t/usr/libexec/git-core/git')?.type).toBe('file');
      expect(t.get('t/b')?.hash).toBe(sha('a\n'));
      expect(t.has('t/a')).toBe(false);
    },
  },
  {
    key: 'ggcr-2002',
    issue: 'google/go-containerregistry#2002',
    what: 'a hard link group whose first name in the tar is rewritten by a later layer (the other names keep the old content)',
    dockerfile: `
RUN mkdir /t && echo '123 -' > /t/t2
RUN ln /t/t2 /t/t1 && ln /t/t2 /t/t3
RUN echo '456 -' > /t/t1`,
    check: (t, l) => {
      expect(has(l, '1 t/t3 -> t/t1')).toBe(true);
      expect(t.get('t/t1')?.hash).toBe(sha('456 -\n'));
      expect(t.get('t/t2')?.hash).toBe(sha('123 -\n'));
      expect(t.get('t/t3')?.hash).toBe(sha('123 -\n'));
      expect(t.get('t/t3')?.group).toBe('t/t2');
    },
  },
  {
    key: 'ggcr-1897',
    issue: 'google/go-containerregistry#1897',
    what: 'an opaque whiteout on a/ hides a/b/ and everything below it',
    dockerfile: `
RUN mkdir -p /t/a/b && echo foo > /t/a/b/foo && echo keep > /t/keep
RUN rm -rf /t/a && mkdir /t/a`,
    check: (t, l) => {
      expect(has(l, '0 t/a/.wh..wh..opq')).toBe(true);
      expect(t.get('t/a')?.type).toBe('dir');
      expect([...t.keys()].filter((p) => p.startsWith('t/a/'))).toEqual([]);
    },
  },
  {
    key: 'ggcr-2191',
    issue: 'google/go-containerregistry#2191',
    what: 'a directory whited out (.wh.a, no opaque marker) and recreated by a later layer holds only the new entries',
    layers: () => [
      layerTar([{ path: 'a/', type: 'dir' }, { path: 'a/foo', data: 'foo\n' }, { path: 'b/', type: 'dir' }, { path: 'b/bar', data: 'bar\n' }]),
      layerTar([{ path: '.wh.a', mode: 0o600 }]),
      layerTar([{ path: 'a/', type: 'dir' }, { path: 'a/baz', data: 'baz\n' }]),
    ],
    check: (t) => {
      expect(t.get('a/baz')?.hash).toBe(sha('baz\n'));
      expect(t.get('b/bar')?.hash).toBe(sha('bar\n'));
      expect(t.has('a/foo')).toBe(false);
    },
  },
  {
    key: 'dsq-186',
    issue: 'goldmann/docker-squash#186',
    what: 'an opaque directory (rm -rf, mkdir, touch in one layer): lower entries hidden, same-layer ones kept',
    dockerfile: `
RUN mkdir -p /d1 && touch /d1/foobar
RUN rm -rf /d1 && mkdir -p /d1 && touch /d1/foo`,
    check: (t, l) => {
      expect(has(l, '0 d1/.wh..wh..opq')).toBe(true);
      expect(t.has('d1/foo')).toBe(true);
      expect(t.has('d1/foobar')).toBe(false);
    },
  },
  {
    key: 'dsq-97',
    issue: 'goldmann/docker-squash#97',
    what: 'whiteouts of files that come from the parent image (rm -rvf /etc/cron*/*)',
    parent: `
RUN mkdir -p /etc/cron.daily /etc/cron.hourly /etc/logrotate.d && echo y > /etc/cron.daily/0yum-daily.cron && echo r > /etc/cron.daily/rhsmd \\
 && echo h > /etc/cron.hourly/0yum-hourly.cron && echo s > /etc/logrotate.d/subscription-manager && echo y > /etc/logrotate.d/yum`,
    dockerfile: `
RUN rm -rvf /etc/cron*/*
RUN rm -rvf /etc/logrotate*/*`,
    check: (t, l) => {
      expect(l.flat().some((x) => x.startsWith('0 etc/cron.daily/.wh.rhsmd'))).toBe(true);
      for (const d of ['etc/cron.daily', 'etc/cron.hourly', 'etc/logrotate.d']) {
        expect(t.get(d)?.type, d).toBe('dir');
        expect([...t.keys()].filter((p) => p.startsWith(`${d}/`)), d).toEqual([]);
      }
    },
  },
  {
    key: 'dsq-253',
    issue: 'goldmann/docker-squash#253',
    what: 'a directory replaced by a regular file of the same name',
    dockerfile: `
RUN mkdir /tmp/dir
RUN touch /tmp/dir/file
RUN rm -rf /tmp/dir ; touch /tmp/dir`,
    check: (t) => {
      expect(t.get('tmp/dir')?.type).toBe('file');
      expect(t.has('tmp/dir/file')).toBe(false);
    },
  },
  {
    key: 'dsq-94',
    issue: 'goldmann/docker-squash#94',
    what: 'hard links made in one layer (git-core style) survive, with a later layer whiting out an unrelated file',
    dockerfile: `
RUN mkdir -p /usr/libexec/git-core /usr/local/bin /var/lib/dnf/history && cp /bin/cat /usr/libexec/git-core/git \\
 && for n in add commit merge; do ln /usr/libexec/git-core/git /usr/libexec/git-core/git-$n; done \\
 && ln /usr/libexec/git-core/git /usr/local/bin/git && echo j > /var/lib/dnf/history/history-2016-03-04.sqlite-journal
RUN rm /var/lib/dnf/history/history-2016-03-04.sqlite-journal`,
    check: (t, l) => {
      expect(has(l, '0 var/lib/dnf/history/.wh.history-2016-03-04.sqlite-journal')).toBe(true);
      for (const p of ['usr/libexec/git-core/git-add', 'usr/libexec/git-core/git-commit', 'usr/libexec/git-core/git-merge', 'usr/local/bin/git']) {
        expect(t.get(p)?.group, p).toBe('usr/libexec/git-core/git');
      }
    },
  },
  {
    key: 'implicit-parents',
    issue: 'apple/container#1797 (a layer from Bazel rules_img: no directory entries, a hard link in a directory the layer never names)',
    what: 'files and a hard link whose parent directories have no entry of their own in the layer: they are made implicitly, as containerd and Docker do',
    layers: () => [
      layerTar([
        { path: 'app/bin/app', data: 'app\n', mode: 0o755 }, { path: 'app/bin/app.runfiles/_main/main.go', data: 'go\n' },
        { path: 'app/bin/app.runfiles/_main/app_/app', type: 'hardlink', link: 'app/bin/app' },
      ]),
    ],
    check: (t) => {
      expect(t.get('app/bin/app.runfiles/_main/app_/app')?.hash).toBe(sha('app\n'));
      expect(t.get('app/bin/app.runfiles/_main/app_/app')?.group).toBe('app/bin/app');
      expect(t.get('app/bin/app.runfiles/_main/app_')?.type).toBe('dir');
    },
  },
  {
    key: 'wh-hardlink',
    issue: 'cmssw/el9 images (whiteouts shipped as hard link entries, typeflag 1; cvmfs/cvmfs#4286)',
    what: '.wh. whiteouts (and an opaque marker) that are hard link entries: linked to the deleted file of the first whiteout (as a tar writer that keys hard links by inode names them), to a whiteout of the same layer, and, in a later layer, to paths that no longer exist',
    layers: () => [
      layerTar([
        { path: 'w/', type: 'dir' }, { path: 'w/a/', type: 'dir' }, { path: 'w/a/x', data: 'x\n' }, { path: 'w/a/z', data: 'z\n' },
        { path: 'w/b/', type: 'dir' }, { path: 'w/b/y', data: 'y\n' }, { path: 'w/c/', type: 'dir' }, { path: 'w/c/q', data: 'q\n' }, { path: 'w/keep', data: 'keep\n' },
        { path: 'w/d/', type: 'dir' }, { path: 'w/d/old', data: 'old\n' },
      ]),
      layerTar([
        { path: 'w/a/', type: 'dir' }, { path: 'w/a/.wh.x', mode: 0o600 }, { path: 'w/a/.wh.z', type: 'hardlink', link: 'w/a/x', mode: 0o600 },
        { path: 'w/b/', type: 'dir' }, { path: 'w/b/.wh.y', type: 'hardlink', link: 'w/a/.wh.x', mode: 0o600 },
      ]),
      layerTar([
        { path: 'w/c/', type: 'dir' }, { path: 'w/c/.wh.q', type: 'hardlink', link: 'w/a/x', mode: 0o600 },
        { path: 'w/d/', type: 'dir' }, { path: 'w/d/.wh..wh..opq', type: 'hardlink', link: 'w/a/.wh.x', mode: 0o600 }, { path: 'w/d/new', data: 'new\n' },
      ]),
    ],
    check: (t, l) => {
      expect(has(l, '1 w/a/.wh.z -> w/a/x')).toBe(true);
      expect(has(l, '1 w/c/.wh.q -> w/a/x')).toBe(true);
      expect(t.get('w/keep')?.hash).toBe(sha('keep\n'));
      expect([...t.keys()].filter((p) => /^w\/[abcd]\//.test(p))).toEqual(['w/d/new']);
    },
  },
  {
    key: 'wh-link-docker',
    issue: 'cmssw/el9 images (whiteouts sharing one inode, as Docker writes them: a linkname on the whiteout entry)',
    what: 'several files removed in one step: overlayfs (Linux >= 5.8) links every whiteout to one inode, and Docker writes the later ones with the first whiteout\'s deleted name as linkname (Docker 20.10: typeflag 0; a writer that keeps the hard link type: typeflag 1)',
    dockerfile: `
RUN mkdir -p /w/a /w/b && echo x > /w/a/x && echo z > /w/a/z && echo y > /w/b/y && echo keep > /w/keep
RUN rm /w/a/x /w/a/z /w/b/y`,
    check: (t, l) => {
      expect(l.flat().some((x) => /^[01] w\/(a\/\.wh\.z|b\/\.wh\.y) -> w\/a\/x$/.test(x)), l.flat().filter((x) => x.includes('.wh.')).join(', ')).toBe(true);
      expect(t.get('w/keep')?.hash).toBe(sha('keep\n'));
      expect([...t.keys()].filter((p) => /^w\/[ab]\//.test(p))).toEqual([]);
    },
  },
  {
    key: 'socket',
    issue: 'sockets in layers (a RUN step leaves a bound unix socket)',
    what: 'a unix socket created by a build step: Docker does not put it into the layer, nor may any output',
    dockerfile: `
RUN mkdir /t && echo keep > /t/keep && perl -e 'socket(S, 1, 1, 0) or die $!; bind(S, pack("S Z*", 1, "/t/sock")) or die $!' && mkfifo /t/fifo`,
    check: (t) => {
      expect(t.get('t/keep')?.type).toBe('file');
      expect(t.get('t/fifo')?.type).toBe('fifo');
      expect(t.has('t/sock')).toBe(false);
    },
  },
  {
    key: 'caps',
    issue: 'binary security.capability values (non-UTF-8 bytes in the PAX xattr record)',
    what: 'file capabilities with bytes >= 0x80 (cap_setfcap, =ep), on a file with a hard link in another directory',
    dockerfile: `
RUN mkdir -p /t/a /t/b && cp /bin/cat /t/a/capped && setcap cap_setfcap,cap_net_raw,cap_sys_admin+eip /t/a/capped \\
 && ln /t/a/capped /t/b/capped-link && cp /bin/cat /t/all && setcap =ep /t/all`,
    check: (t) => {
      expect(t.get('t/b/capped-link')?.group).toBe('t/a/capped');
    },
  },
];

const tagOf = (f: Fixture) => `${PREFIX}-peer-${f.key}:${process.pid}`;
const flatTagOf = (f: Fixture) => `${PREFIX}-peer-${f.key}:${process.pid}-flat`;
const parentTagOf = (f: Fixture) => `${PREFIX}-peer-${f.key}-parent:${process.pid}`;

let work: string;
let reg: Registry | undefined;
let repo: string;
const exported = new Map<string, Tree>();
const layerEntries = new Map<string, string[][]>();
/** Fixture key -> tree path in the repository (from the sync plan). */
const synced = new Map<string, string>();
const syncErrors = new Map<string, Error>();
/** Fixture key -> paths the sandbox writer added (documented additions). */
const added = new Map<string, Set<string>>();

/** Entries of each layer of `docker save` (typeflag path [-> link]), read from the raw headers. */
async function savedLayers(image: string): Promise<string[][]> {
  const dir = fs.mkdtempSync(path.join(work, 'save-'));
  try {
    await execa('sh', ['-c', 'docker save "$1" | tar -xf - -C "$2"', 'sh', image, dir]);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    return (manifest[0].Layers as string[]).map((l) => rawEntries(fs.readFileSync(path.join(dir, l))));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function buildFixture(f: Fixture): Promise<void> {
  if (f.layers) return loadHandMade(tagOf(f), f.layers(), work);
  let from = BASE;
  if (f.parent) {
    await dockerBuild(parentTagOf(f), `FROM ${BASE}${f.parent}\n`);
    from = parentTagOf(f);
  }
  await dockerBuild(tagOf(f), `FROM ${from}${f.dockerfile}\n`);
}

/** Run `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (next < items.length) await fn(items[next++]); }));
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-peer-`));
  await buildTinyBase(BASE);
  await pool(FIXTURES, 3, buildFixture);
  reg = await startRegistry();
  await pool(FIXTURES, 3, async (f) => {
    exported.set(f.key, await exportTree(tagOf(f)));
    layerEntries.set(f.key, await savedLayers(tagOf(f)));
    await execa('skopeo', ['copy', '--dest-tls-verify=false', `docker-daemon:${tagOf(f)}`, `docker://${reg!.host}/peer/${f.key}:1`]);
  });
  repo = path.join(work, 'repo');
  await initRepository(repo, { name: 'peer.example.org' });
  // one wish list (own tree directory and state) per fixture, so one image that fails fails only its own test
  for (const f of FIXTURES) {
    const wish = path.join(work, `wish-${f.key}.yaml`);
    fs.writeFileSync(wish, `tree: containers/${f.key}/sha256-{digest}\nlink: containers/${f.key}/{name}-{tag}\nimages:\n  - image: docker://${reg!.host}/peer/${f.key}\n    tags: ["1"]\n`);
    try {
      const r = await syncImages({ wishList: wish, repo, tmpDir: work });
      synced.set(f.key, r.plan.write[0].path);
    } catch (e) {
      syncErrors.set(f.key, e as Error);
    }
  }
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await removeImages(FIXTURES.flatMap((f) => [flatTagOf(f), tagOf(f), ...(f.parent ? [parentTagOf(f)] : [])]));
  await removeImages([BASE]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const noEtc = (t: Tree) => (p: string) => p === 'etc' && !t.has('etc');

describe.each(FIXTURES)('$issue: $key', (f) => {
  it(`${f.issue}: the fixture reproduces it (${f.what})`, () => {
    f.check(exported.get(f.key)!, layerEntries.get(f.key)!);
  });

  it(`${f.issue}: image flatten (archive, then loaded into the engine) equals docker export`, async () => {
    const out = path.join(work, `${f.key}.tar`);
    await flattenToArchive({ source: tagOf(f), output: out });
    const { offset, size } = layerOf(out);
    const flat = await treeFromTarFile(out, offset, size);
    expect(diffTrees(exported.get(f.key)!, flat, { groups: true, ignore: noEtc(flat) })).toEqual([]);
    const r = await flattenToEngine({ source: tagOf(f), tag: flatTagOf(f) });
    expect(r.ref).toBe(flatTagOf(f));
    expect(diffTrees(exported.get(f.key)!, await exportTree(flatTagOf(f)), { groups: true })).toEqual([]);
  });

  it(`${f.issue}: image sandbox equals docker export (documented sandbox differences only)`, async () => {
    const out = path.join(work, `${f.key}-sandbox`);
    const r = await writeSandbox({ source: tagOf(f), output: out });
    added.set(f.key, new Set(r.added));
    const sb = treeFromDir(out);
    const diffs = diffTrees(exported.get(f.key)!, sb, {
      groups: true,
      expect: (_p, e) => sandboxExpect(e),
      extraAllowed: (p) => r.added.includes(p) || p.startsWith('.singularity.d/'),
      ignore: noEtc(sb),
    });
    expect(diffs).toEqual([]);
  });

  it(`${f.issue}: image sync (registry -> repository -> checkout) equals docker export`, async () => {
    const treePath = synced.get(f.key);
    if (syncErrors.has(f.key)) throw syncErrors.get(f.key);
    expect(treePath, 'the sync wrote this fixture').toBeDefined();
    const dest = path.join(work, `${f.key}-checkout`);
    await checkout(repo, dest, { path: treePath });
    const tree = treeFromDir(dest);
    const extra = added.get(f.key);
    const diffs = diffTrees(exported.get(f.key)!, tree, {
      groups: true,
      expect: repoExpect(exported.get(f.key)!),
      // .cvmfscatalog: the repository's own nested-catalog marker at the tree's top
      extraAllowed: (p) => p === '.cvmfscatalog' || p === '.singularity.d' || p.startsWith('.singularity.d/') || (extra ? extra.has(p) : true),
      ignore: noEtc(tree),
    });
    expect(diffs).toEqual([]);
  });
});

describe('binary security.capability values byte for byte', () => {
  const f = FIXTURES.find((x) => x.key === 'caps')!;
  const names = (m: Map<string, string>) => new Map([...m].filter(([p]) => p.startsWith('t/')).map(([p, v]) => [path.posix.basename(p), v]));
  let expected: Map<string, string>;

  beforeAll(async () => {
    const dir = path.join(work, 'caps-export');
    await exportWithXattrs(tagOf(f), dir);
    expected = names(await capsOfDir(dir));
  });

  it('the export carries three capability values with bytes that are not UTF-8', () => {
    expect([...expected.keys()].sort()).toEqual(['all', 'capped', 'capped-link']);
    for (const [name, hex] of expected) {
      const raw = Buffer.from(hex, 'hex');
      expect(Buffer.from(raw.toString('utf8')).equals(raw), name).toBe(false);
    }
  });

  it('image flatten keeps them (archive layer and the engine image)', async () => {
    const out = path.join(work, 'caps-flat.tar');
    await flattenToArchive({ source: tagOf(f), output: out });
    const { offset, size } = layerOf(out);
    const dir = path.join(work, 'caps-flat');
    await extractWithXattrs(fs.readFileSync(out).subarray(offset, offset + size), dir);
    expect(names(await capsOfDir(dir))).toEqual(expected);
    await flattenToEngine({ source: tagOf(f), tag: flatTagOf(f) });
    const dir2 = path.join(work, 'caps-flat-engine');
    await exportWithXattrs(flatTagOf(f), dir2);
    expect(names(await capsOfDir(dir2))).toEqual(expected);
  });

  it('image sandbox (as root) and image sync (catalog xattrs) keep them', async () => {
    const out = path.join(work, 'caps-sandbox-xattrs');
    await writeSandbox({ source: tagOf(f), output: out });
    expect(names(await capsOfDir(out))).toEqual(expected);
    const inRepo = catalogXattr(repo, work, 'security.capability');
    expect(new Map([...inRepo].filter(([n]) => expected.has(n)))).toEqual(expected);
  });
});
