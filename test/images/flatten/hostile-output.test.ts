/**
 * What a hostile review found in the sandbox writer, the flatten outputs and `gridforge image`:
 * - setuid/setgid bits of an image's files must not land on the host (directory and repository
 *   sandboxes), unless --keep-setuid;
 * - SIGTERM mid-run leaves no temporary or partial output beside the output;
 * - an existing output directory is replaced only when it is an earlier result of gridforge, or
 *   with --force;
 * - `image sandbox --repo` exits after an error mid-write (it hung) and agrees with the
 *   directory mode on hard links to symlinks;
 * - references and tags starting with `-` are refused; an --output under a file or naming a
 *   directory gets a clear exit 2, not a raw ENOTDIR / EISDIR.
 * Real engine, real files, the CLI as a child process.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { initRepository, openRepository } from '../../../cvmfs-publish/index.ts';
import { encodeHeader, END_OF_ARCHIVE, padded } from '../../../images/archive/tar-format.ts';
import { dockerBuild, layerTar, legacyArchive, PREFIX, removeImages, type E } from './helpers.ts';

const CLI = path.resolve('scripts/bin/gridforge.mjs');
const SUID = `${PREFIX}-suid:${process.pid}`;
let work: string;
let small: string;

const gf = (args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}) =>
  execa(process.execPath, [CLI, ...args], { reject: false, timeout: opts.timeout ?? 120_000, env: opts.env });

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-hostile-`));
  small = path.join(work, 'small.tar');
  fs.writeFileSync(small, legacyArchive({ tag: `${PREFIX}/small:1`, layers: [layerTar([{ path: 'bin/', type: 'dir' }, { path: 'bin/a', data: 'a' }])] }));
});

afterAll(async () => {
  await removeImages([SUID]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function newRepo(name: string, maxFileSize?: number): Promise<string> {
  const repo = path.join(work, name);
  await initRepository(repo, { name: `${name}.gfflat.test.org`, keysDir: path.join(work, `${name}-keys`), maxFileSize });
  return repo;
}

/** Modes of every path below `base` in the repository's current revision. */
async function repoModes(repo: string, base: string): Promise<Map<string, { type: string; mode: number; target?: string }>> {
  const reader = await openRepository(repo);
  const out = new Map<string, { type: string; mode: number; target?: string }>();
  for await (const e of reader.walk(base)) {
    const rel = e.path.replace(/^\/+/, '').slice(base.length - 1).replace(/^\//, '');
    if (rel) out.set(rel, { type: e.type, mode: e.mode & 0o7777, target: e.target });
  }
  return out;
}

async function trunkRevision(repo: string): Promise<number | undefined> {
  return (await (await openRepository(repo)).tags()).find((t) => t.name === 'trunk')?.revision;
}

/** Non-directories under `dir` with a setuid or setgid bit. */
function setidFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else if (st.mode & 0o6000) found.push(r);
    }
  };
  walk('');
  return found;
}

describe('setuid/setgid bits do not land on the host', () => {
  beforeAll(async () => {
    await dockerBuild(SUID, [
      'FROM gridforge/base:debian-bookworm',
      'RUN cp /bin/true /usr/local/bin/suid-root && chmod 4755 /usr/local/bin/suid-root && cp /bin/true /usr/local/bin/sgid-shadow && chgrp shadow /usr/local/bin/sgid-shadow && chmod 2755 /usr/local/bin/sgid-shadow',
      '',
    ].join('\n'));
  }, 300_000);

  it('a directory sandbox drops them by default and keeps them with --keep-setuid', async () => {
    const out = path.join(work, 'suid.sandbox');
    const r = await gf(['image', 'sandbox', SUID, '--output', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(setidFiles(out)).toEqual([]);
    expect(fs.statSync(path.join(out, 'usr/local/bin/suid-root')).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(out, 'usr/local/bin/sgid-shadow')).mode & 0o7777).toBe(0o755);
    expect(r.stdout).toMatch(/dropped setuid\/setgid bits of \d+ files/);

    const kept = path.join(work, 'suid-kept.sandbox');
    const k = await gf(['image', 'sandbox', SUID, '--output', kept, '--keep-setuid']);
    expect(k.exitCode, k.stderr).toBe(0);
    const su = fs.statSync(path.join(kept, 'usr/local/bin/suid-root'));
    expect(su.mode & 0o7777).toBe(0o4755);
    expect(su.uid).toBe(0);
    expect(fs.statSync(path.join(kept, 'usr/local/bin/sgid-shadow')).mode & 0o7777).toBe(0o2755);
  }, 300_000);

  it('a repository sandbox drops them by default and keeps them with --keep-setuid', async () => {
    const repo = await newRepo('suidrepo');
    const base = '/containers/fs/singularity/suid';
    const r = await gf(['image', 'sandbox', SUID, '--repo', repo, '--path', base]);
    expect(r.exitCode, r.stderr).toBe(0);
    const modes = await repoModes(repo, base);
    expect(modes.get('usr/local/bin/suid-root')?.mode).toBe(0o755);
    expect(modes.get('usr/local/bin/sgid-shadow')?.mode).toBe(0o755);
    expect([...modes].filter(([, e]) => e.type !== 'dir' && e.mode & 0o6000).map(([p]) => p)).toEqual([]);

    const k = await gf(['image', 'sandbox', SUID, '--repo', repo, '--path', base, '--keep-setuid']);
    expect(k.exitCode, k.stderr).toBe(0);
    const kept = await repoModes(repo, base);
    expect(kept.get('usr/local/bin/suid-root')?.mode).toBe(0o4755);
    expect(kept.get('usr/local/bin/sgid-shadow')?.mode).toBe(0o2755);
  }, 300_000);
});

/**
 * An OCI layout whose single uncompressed layer has many small files and some large ones, written
 * as a stream (so the test does not hold it in memory): big enough that writing it takes a while.
 */
function bigOciLayout(dir: string, smallFiles: number, bigFiles: number, bigSize: number): void {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const layerTmp = path.join(blobs, 'layer.tmp');
  const fd = fs.openSync(layerTmp, 'w');
  const hash = crypto.createHash('sha256');
  let size = 0;
  const put = (b: Buffer) => {
    fs.writeSync(fd, b);
    hash.update(b);
    size += b.length;
  };
  const header = (e: E & { size: number }) => encodeHeader({
    path: e.path, type: e.type ?? 'file', mode: e.mode ?? 0o644, uid: 0, gid: 0, size: e.size, mtime: 1_700_000_000, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(),
  });
  put(header({ path: 'many/', type: 'dir', mode: 0o755, size: 0 }));
  const one = Buffer.alloc(512, 'x');
  for (let i = 0; i < smallFiles; i++) {
    put(header({ path: `many/f${i}`, size: 100 }));
    put(one);
  }
  put(header({ path: 'big/', type: 'dir', mode: 0o755, size: 0 }));
  const chunk = crypto.randomBytes(1 << 20);
  for (let i = 0; i < bigFiles; i++) {
    put(header({ path: `big/b${i}`, size: bigSize }));
    for (let left = bigSize; left > 0; left -= chunk.length) put(chunk.subarray(0, Math.min(left, chunk.length)));
    put(Buffer.alloc(padded(bigSize) - bigSize));
  }
  put(END_OF_ARCHIVE);
  fs.closeSync(fd);
  const layerDigest = `sha256:${hash.digest('hex')}`;
  fs.renameSync(layerTmp, path.join(blobs, layerDigest.slice(7)));
  const blob = (b: Buffer) => {
    const d = `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
    fs.writeFileSync(path.join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [layerDigest] } })));
  const manifest = blob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size }],
  })));
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'big' } }] }));
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
}

describe('SIGTERM mid-run leaves nothing behind', () => {
  let big: string;
  beforeAll(() => {
    big = path.join(work, 'big-oci');
    bigOciLayout(big, 40_000, 48, 8 << 20);
  }, 300_000);

  /** Start the CLI, wait until a new name appears in `dir`, SIGTERM it; return what it left. */
  async function killMidRun(args: string[], dir: string): Promise<{ exitCode?: number; signal?: string; left: string[]; sawTemp: string }> {
    const spool = fs.mkdtempSync(path.join(work, 'spool-'));
    const before = new Set(fs.readdirSync(dir));
    const child = execa(process.execPath, [CLI, ...args, '--tmp-dir', spool], { reject: false });
    let sawTemp = '';
    const deadline = Date.now() + 120_000;
    while (!sawTemp && Date.now() < deadline && child.exitCode === null) {
      sawTemp = fs.readdirSync(dir).find((n) => !before.has(n)) ?? '';
      if (!sawTemp) await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGTERM');
    const r = await child;
    const left = [...fs.readdirSync(dir).filter((n) => !before.has(n)), ...fs.readdirSync(spool).map((n) => `spool/${n}`)];
    return { exitCode: r.exitCode, signal: r.signal, left, sawTemp };
  }

  it('image sandbox --output', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'kill-sb-'));
    const r = await killMidRun(['image', 'sandbox', big, '--output', path.join(dir, 'out.sandbox')], dir);
    expect(r.sawTemp).toMatch(/^\.out\.sandbox\./);
    expect(r.exitCode).toBe(143);
    expect(r.left).toEqual([]);
  }, 300_000);

  it('image flatten --output', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'kill-flat-'));
    const r = await killMidRun(['image', 'flatten', big, '--output', path.join(dir, 'out.tar')], dir);
    expect(r.sawTemp).toMatch(/^\.out\.tar\./);
    expect(r.exitCode).toBe(143);
    expect(r.left).toEqual([]);
  }, 300_000);

  it('image flatten --oci', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'kill-oci-'));
    const r = await killMidRun(['image', 'flatten', big, '--oci', path.join(dir, 'out.oci')], dir);
    expect(r.sawTemp).toMatch(/^\.out\.oci\./);
    expect(r.exitCode).toBe(143);
    expect(r.left).toEqual([]);
  }, 300_000);
});

describe('an existing output directory is replaced only when gridforge wrote it', () => {
  it('image sandbox --output: a directory with .singularity.d and a user file needs --force', async () => {
    const out = path.join(work, 'users-sandbox');
    fs.mkdirSync(path.join(out, '.singularity.d'), { recursive: true });
    fs.writeFileSync(path.join(out, 'thesis.tex'), 'precious');
    const r = await gf(['image', 'sandbox', small, '--output', out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(out);
    expect(r.stderr).toContain('--force');
    expect(fs.readFileSync(path.join(out, 'thesis.tex'), 'utf8')).toBe('precious');

    const f = await gf(['image', 'sandbox', small, '--output', out, '--force']);
    expect(f.exitCode, f.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'thesis.tex'))).toBe(false);
    expect(fs.readFileSync(path.join(out, 'bin/a'), 'utf8')).toBe('a');
    // now it is gridforge's: replaced without --force
    const again = await gf(['image', 'sandbox', small, '--output', out]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(fs.readdirSync(work).filter((n) => n.startsWith('.users-sandbox'))).toEqual([]);
  }, 120_000);

  it('image flatten --oci: a directory with oci-layout and a user file needs --force', async () => {
    const out = path.join(work, 'users-oci');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    fs.writeFileSync(path.join(out, 'notes.txt'), 'precious');
    const r = await gf(['image', 'flatten', small, '--oci', out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(out);
    expect(r.stderr).toContain('--force');
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('precious');

    const f = await gf(['image', 'flatten', small, '--oci', out, '--force']);
    expect(f.exitCode, f.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'notes.txt'))).toBe(false);
    const again = await gf(['image', 'flatten', small, '--oci', out]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'index.json'))).toBe(true);
  }, 120_000);
});

describe('image sandbox --repo and the directory mode agree, and --repo exits after an error', () => {
  const hardlinkToSymlink = () => legacyArchive({
    tag: `${PREFIX}/hl:1`,
    layers: [layerTar([
      { path: 'bin/', type: 'dir' }, { path: 'bin/big', data: 'B'.repeat(200_000) },
      { path: 'bin/sl', type: 'symlink', link: 'big' }, { path: 'bin/sl2', type: 'hardlink', link: 'bin/sl' },
      { path: 'etc/', type: 'dir' }, { path: 'etc/sl3', type: 'hardlink', link: 'bin/sl' },
    ])],
  });

  it('a hard link to a symlink: both modes write a symlink, --repo exits', async () => {
    const archive = path.join(work, 'hl.tar');
    fs.writeFileSync(archive, hardlinkToSymlink());
    const repo = await newRepo('hlrepo');
    const base = '/containers/fs/singularity/hl';
    const r = await gf(['image', 'sandbox', archive, '--repo', repo, '--path', base], { timeout: 60_000 });
    expect(r.timedOut, 'image sandbox --repo did not exit').toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    const modes = await repoModes(repo, base);
    for (const p of ['bin/sl2', 'etc/sl3']) expect(modes.get(p), p).toMatchObject({ type: 'symlink', target: 'big' });

    const out = path.join(work, 'hl.sandbox');
    const d = await gf(['image', 'sandbox', archive, '--output', out]);
    expect(d.exitCode, d.stderr).toBe(0);
    for (const p of ['bin/sl2', 'etc/sl3']) expect(fs.readlinkSync(path.join(out, p)), p).toBe('big');
  }, 120_000);

  it('an error mid-write (a file above the repository size limit) exits 2 within a timeout, repository unchanged', async () => {
    const repo = await newRepo('limitrepo', 150_000);
    const base = '/containers/fs/singularity/limit';
    const archive = path.join(work, 'limit.tar');
    fs.writeFileSync(archive, legacyArchive({ tag: `${PREFIX}/limit:1`, layers: [layerTar([{ path: 'bin/', type: 'dir' }, { path: 'bin/a', data: 'a'.repeat(100_000) }, { path: 'bin/b', data: 'b'.repeat(200_000) }])] }));
    const before = await trunkRevision(repo);
    const r = await gf(['image', 'sandbox', archive, '--repo', repo, '--path', base], { timeout: 60_000 });
    expect(r.timedOut, 'image sandbox --repo hung after the error').toBe(false);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('bin/b');
    expect(await trunkRevision(repo)).toBe(before);
    expect((await repoModes(repo, '/')).size).toBe(0);
  }, 120_000);

  it('a hard link to a directory is refused in both modes (exit 2), repository unchanged', async () => {
    const archive = path.join(work, 'hldir.tar');
    fs.writeFileSync(archive, legacyArchive({ tag: `${PREFIX}/hldir:1`, layers: [layerTar([{ path: 'd/', type: 'dir' }, { path: 'x', type: 'hardlink', link: 'd' }])] }));
    const repo = await newRepo('hldirrepo');
    const before = await trunkRevision(repo);
    const r = await gf(['image', 'sandbox', archive, '--repo', repo, '--path', 'containers/fs/singularity/hldir'], { timeout: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('hardlink to directory');
    expect(await trunkRevision(repo)).toBe(before);
    const d = await gf(['image', 'sandbox', archive, '--output', path.join(work, 'hldir.sandbox')]);
    expect(d.exitCode).toBe(2);
    expect(fs.existsSync(path.join(work, 'hldir.sandbox'))).toBe(false);
  }, 120_000);
});

describe('arguments docker would read as options, and outputs that cannot be written', () => {
  it('a source or tag starting with "-" is refused with exit 2', async () => {
    for (const cmd of [['image', 'flatten', '--', '--help'], ['image', 'sandbox', '--output', path.join(work, 'dash.sandbox'), '--', '-q']]) {
      const r = await gf(cmd);
      expect(r.exitCode, cmd.join(' ')).toBe(2);
      expect(r.stderr).toContain('is not an image reference');
    }
    const t = await gf(['image', 'flatten', small, '--tag=--quiet']);
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toContain('--tag');
  });

  it('--output naming a directory or a path under a file exits 2 naming the flag, nothing written', async () => {
    const file = path.join(work, 'a-file');
    fs.writeFileSync(file, 'x');
    const dir = fs.mkdtempSync(path.join(work, 'a-dir-'));
    const cases: [string[], string][] = [
      [['image', 'flatten', small, '--output', dir], '--output'],
      [['image', 'flatten', small, '--output', path.join(file, 'x.tar')], '--output'],
      [['image', 'flatten', small, '--oci', file], '--oci'],
      [['image', 'flatten', small, '--oci', path.join(file, 'oci')], '--oci'],
      [['image', 'sandbox', small, '--output', path.join(file, 'sb')], '--output'],
      [['image', 'sandbox', small, '--output', file], '--output'],
    ];
    for (const [args, flag] of cases) {
      const r = await gf(args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(flag);
      expect(r.stderr).not.toMatch(/EISDIR|ENOTDIR/);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });
});

describe('--max-layer-size (images/archive/limits.ts)', () => {
  it('a layer above the limit is refused by flatten and sandbox (exit 2), a bad size names the flag', async () => {
    const archive = path.join(work, 'limit-layer.tar');
    fs.writeFileSync(archive, legacyArchive({ tag: `${PREFIX}/limit-layer:1`, layers: [layerTar([{ path: 'f', data: 'x'.repeat(100_000) }])] }));
    const flat = await gf(['image', 'flatten', archive, '--output', path.join(work, 'limit-layer-flat.tar'), '--max-layer-size', '16K']);
    expect(flat.exitCode).toBe(2);
    expect(flat.stderr).toContain('layer 1');
    expect(fs.existsSync(path.join(work, 'limit-layer-flat.tar'))).toBe(false);
    const sb = await gf(['image', 'sandbox', archive, '--output', path.join(work, 'limit-layer.sandbox'), '--max-layer-size', '16K']);
    expect(sb.exitCode).toBe(2);
    expect(fs.existsSync(path.join(work, 'limit-layer.sandbox'))).toBe(false);
    const ok = await gf(['image', 'sandbox', archive, '--output', path.join(work, 'limit-layer.sandbox'), '--max-layer-size', '1M']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    const bad = await gf(['image', 'sandbox', archive, '--output', path.join(work, 'x.sandbox'), '--max-layer-size', 'lots']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--max-layer-size');
  }, 120_000);
});
