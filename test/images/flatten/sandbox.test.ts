/**
 * Sandboxes in use:
 * - a job-like image (Debian base + openjdk-17-jre-headless + procps, built by the real engine)
 *   becomes a sandbox written by an unprivileged user through the CLI, then runs read-only under
 *   bubblewrap (unprivileged user namespaces, the mechanism Apptainer uses without setuid) with
 *   /cvmfs and /workdir bound in: `java -version && ps --version`. A bind point the image lacks fails.
 * - the repository sink: `image sandbox --repo --path` streams into a CernVM-FS transaction; the
 *   published tree (read back with the repository reader) equals the directory sandbox; a refused
 *   image leaves the repository at its old revision.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { initRepository, openRepository } from '../../../cvmfs-publish/index.ts';
import { dockerBuild, layerTar, legacyArchive, PREFIX, removeImages, treeFromDir, type Tree } from './helpers.ts';

const JAVA = `${PREFIX}-java:${process.pid}`;
const CLI = path.resolve('scripts/bin/gridforge.mjs');
let work: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-sb-`));
  fs.chmodSync(work, 0o755);
});

afterAll(async () => {
  await removeImages([JAVA]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

describe('sandbox runs unprivileged under bubblewrap', () => {
  it('java -version && ps --version in a read-only sandbox written by an unprivileged user', async () => {
    await dockerBuild(JAVA, [
      'FROM gridforge/base:debian-bookworm',
      'RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless procps >/dev/null && rm -rf /var/lib/apt/lists/*',
      'ENV JOB_MARKER=from-image',
      'CMD ["/bin/bash"]',
      '',
    ].join('\n'));
    const archive = path.join(work, 'java.tar');
    await execa('docker', ['save', '-o', archive, JAVA]);
    fs.chmodSync(archive, 0o644);
    const userDir = path.join(work, 'nobody');
    fs.mkdirSync(userDir);
    fs.chownSync(userDir, 65534, 65534);
    const out = path.join(userDir, 'job.sandbox');
    // The checkout may sit below a directory only root can enter (`mktemp -d` makes 0700 ones), so the
    // unprivileged user runs gridforge from its own hard-linked copy of the checkout under `work` (0755),
    // with a working directory it can enter.
    const tree = path.join(work, 'gridforge');
    const linked = await execa('cp', ['-al', path.resolve('.'), tree], { reject: false });
    if (linked.exitCode !== 0) await execa('cp', ['-a', path.resolve('.'), tree]);
    const cliAsNobody = path.join(tree, 'scripts/bin/gridforge.mjs');
    const r = await execa(nobody[0], [...nobody.slice(1), process.execPath, cliAsNobody, 'image', 'sandbox', archive, '--output', out, '--bind-point', '/scratch', '--json'], { cwd: userDir, env: { HOME: userDir, TMPDIR: userDir }, reject: false });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.exitCode).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.bindPoints).toContain('/scratch');
    const st = fs.lstatSync(path.join(out, 'usr/bin/ps'));
    expect(st.uid).toBe(65534); // rootless: ownership not preserved
    const t = treeFromDir(out);
    expect([...t.values()].filter((e) => e.type === 'char' || e.type === 'block')).toEqual([]);
    for (const [p, e] of t) if (e.type !== 'symlink') expect(e.mode & 0o200, p).toBe(0o200);

    const cvmfs = path.join(work, 'cvmfs');
    const workdir = path.join(userDir, 'workdir');
    fs.mkdirSync(cvmfs);
    fs.writeFileSync(path.join(cvmfs, 'marker'), 'cvmfs-is-bound');
    fs.mkdirSync(workdir);
    fs.chownSync(workdir, 65534, 65534);
    const bwrap = (binds: string[], script: string) => execa(nobody[0], [
      ...nobody.slice(1), 'bwrap', '--unshare-all', '--die-with-parent', '--ro-bind', out, '/', '--proc', '/proc', '--dev', '/dev',
      ...binds, '--chdir', '/workdir', '/bin/sh', '-c', script,
    ], { reject: false, all: true });
    const run = await bwrap(
      ['--ro-bind', cvmfs, '/cvmfs', '--bind', workdir, '/workdir', '--bind', workdir, '/tmp'],
      '. /.singularity.d/env/10-docker2singularity.sh; java -version && ps --version && cat /cvmfs/marker && echo "$JOB_MARKER" && touch /workdir/written-inside && id -u',
    );
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/openjdk version "17/);
    expect(run.all).toMatch(/ps from procps-ng/);
    expect(run.all).toContain('cvmfs-is-bound');
    expect(run.all).toContain('from-image');
    expect(fs.existsSync(path.join(workdir, 'written-inside'))).toBe(true);
    // the reason for pre-created bind points: a destination missing from a read-only image fails
    const missing = await bwrap(['--ro-bind', cvmfs, '/not-in-image'], 'true');
    expect(missing.exitCode).not.toBe(0);
    // owner-writable: the unprivileged user can delete the sandbox
    const rm = await execa(nobody[0], [...nobody.slice(1), 'rm', '-rf', out], { reject: false });
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(fs.existsSync(out)).toBe(false);
  }, 600_000);
});

function sha(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

describe('sandbox into a CernVM-FS repository transaction', () => {
  const layers = [
    layerTar([
      { path: 'bin/', type: 'dir' }, { path: 'bin/sh', data: '#!fake shell\n', mode: 0o755 }, { path: 'bin/su', data: 'su', mode: 0o4755 },
      { path: 'usr/', type: 'dir' }, { path: 'usr/share/', type: 'dir' }, { path: 'usr/share/zoneinfo/', type: 'dir' }, { path: 'usr/share/zoneinfo/UTC', data: 'TZif2' },
      { path: 'etc/', type: 'dir' }, { path: 'etc/localtime', type: 'symlink', link: '/usr/share/zoneinfo/UTC' },
      { path: 'lib/', type: 'dir' }, { path: 'lib/a.so', data: 'A'.repeat(100_000) }, { path: 'lib/b.so', type: 'hardlink', link: 'lib/a.so' },
      { path: 'opt/', type: 'dir' }, { path: 'opt/a-copy.so', type: 'hardlink', link: 'lib/a.so' },
      { path: 'fifo', type: 'fifo' }, { path: 'fifo-link', type: 'hardlink', link: 'fifo' },
    ]),
    layerTar([{ path: 'bin/.wh.su' }, { path: 'data/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 }, { path: 'data/ünï', data: 'x' }]),
  ];

  it('publishes the same tree as the directory sandbox, atomically', async () => {
    const archive = path.join(work, 'small.tar');
    fs.writeFileSync(archive, legacyArchive({ layers, tag: 'gfflat/small:1', config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], Labels: { a: 'b' } } }));
    const repo = path.join(work, 'repo');
    await initRepository(repo, { name: 'gfflat.test.org', keysDir: path.join(work, 'keys') });
    const r = await execa(process.execPath, [CLI, 'image', 'sandbox', archive, '--repo', repo, '--path', 'containers/fs/singularity/small', '--json'], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.revision).toBeGreaterThan(0);

    const dirOut = path.join(work, 'small.sandbox');
    const d = await execa(process.execPath, [CLI, 'image', 'sandbox', archive, '--output', dirOut, '--json'], { reject: false });
    expect(d.exitCode, d.stderr).toBe(0);
    const expected = treeFromDir(dirOut);

    const reader = await openRepository(repo);
    const base = '/containers/fs/singularity/small';
    const got: Tree = new Map();
    for await (const e of reader.walk(base)) {
      const rel = e.path.replace(/^\/+/, '').slice(base.length);
      if (!rel) continue;
      const p = rel.replace(/^\//, '');
      const type = e.type === 'special' ? 'fifo' : e.type;
      got.set(p, { type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size: type === 'file' ? e.size : 0, hash: type === 'file' ? sha(await reader.readFile(`${base}/${p}`)) : undefined, link: e.target });
    }
    const problems: string[] = [];
    for (const [p, e] of expected) {
      if (e.type === 'fifo') continue; // not published
      const g = got.get(p);
      if (!g) { problems.push(`${p}: missing`); continue; }
      for (const k of ['type', 'uid', 'gid', 'size', 'hash', 'link'] as const) if (g[k] !== e[k]) problems.push(`${p}: ${k} ${g[k]} != ${e[k]}`);
      if (e.type !== 'symlink' && g.mode !== e.mode) problems.push(`${p}: mode ${g.mode.toString(8)} != ${e.mode.toString(8)}`);
    }
    // the image root is a nested catalog, so the repository adds its .cvmfscatalog marker (an empty file)
    expect(got.get('.cvmfscatalog')).toMatchObject({ type: 'file', size: 0 });
    for (const p of got.keys()) if (!expected.has(p) && p !== '.cvmfscatalog') problems.push(`${p}: extra`);
    expect(problems).toEqual([]);
    expect(got.get('etc/localtime')?.link).toBe('/usr/share/zoneinfo/UTC');
    expect(got.has('bin/su')).toBe(false);
    expect(got.get('opt/a-copy.so')?.hash).toBe(got.get('lib/a.so')?.hash);
    expect((await reader.stat(`${base}/lib/b.so`))?.hardlinkGroup).toBeTruthy();
    expect(got.has('cvmfs') && got.has('workdir') && got.has('.singularity.d/runscript')).toBe(true);
    // the directory sandbox keeps FIFOs and their hardlinks
    expect(expected.get('fifo-link')?.type).toBe('fifo');
    expect(fs.lstatSync(path.join(dirOut, 'fifo-link')).ino).toBe(fs.lstatSync(path.join(dirOut, 'fifo')).ino);

    // a refused image changes nothing: same revision as before
    const trunk = async () => (await (await openRepository(repo)).tags()).find((t) => t.name === 'trunk')?.revision;
    const revBefore = await trunk();
    expect(revBefore).toBe(res.revision);
    const evil = path.join(work, 'evil.tar');
    fs.writeFileSync(evil, legacyArchive({ layers: [layerTar([{ path: '../x', data: 'x' }])], tag: 'gfflat/evil:1' }));
    const bad = await execa(process.execPath, [CLI, 'image', 'sandbox', evil, '--repo', repo, '--path', 'containers/fs/singularity/small'], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('../x');
    const after = await openRepository(repo);
    expect((await after.stat(`${base}/lib/a.so`))?.size).toBe(100_000);
    expect(await trunk()).toBe(revBefore);
  }, 300_000);
});
