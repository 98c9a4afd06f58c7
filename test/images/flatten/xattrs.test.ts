/**
 * Extended attributes in sandboxes (images/sandbox/write-tree.ts, xattr-restore.ts,
 * release/sandbox-to-repo.ts): an image built by the real engine with `setcap` (binary
 * security.capability values, NUL bytes included; on a hard-linked file across directories, on a
 * file owned by another user) keeps them in `image sandbox --output` written as root and in
 * `image sandbox --repo`, exactly as Docker's own `docker export` carries them. Read back
 * independently: getfattr (Debian attr) and getcap (libcap2-bin) on the sandbox and on the export
 * extracted by GNU tar --xattrs; the repository's catalogs through sqlite3 on the inflated catalog
 * objects. Still no device nodes. A value above the 255 bytes the repository format holds is
 * refused naming the file, the repository unchanged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { catalogXattr, gf, manifestFields } from '../../cvmfs-publish/helpers.ts';
import { layerTar, legacyArchive, PREFIX, removeImages } from './helpers.ts';

const TAG = `${PREFIX}-xattr:${process.pid}`;
const asRoot = process.getuid?.() === 0;

const DOCKERFILE = `
FROM gridforge/base:debian-bookworm
COPY setcap /usr/local/sbin/setcap
RUN mkdir -p /t/a /t/b && cp /bin/true /t/a/ping && /usr/local/sbin/setcap cap_net_raw+ep /t/a/ping \\
 && ln /t/a/ping /t/a/ping-same-dir && ln /t/a/ping /t/b/ping-other-dir \\
 && cp /bin/true /t/owned && chown 1234:5678 /t/owned && /usr/local/sbin/setcap cap_net_bind_service,cap_net_admin+eip /t/owned \\
 && cp /bin/true /t/v3 && /usr/local/sbin/setcap cap_sys_nice+ep /t/v3 \\
 && mknod /t/nulldev c 1 3 && rm /usr/local/sbin/setcap
`;

let work: string;
/** getfattr dump of security.capability below /t of Docker's own export. */
let dockerDump: string;

/** `getfattr` of security.capability (hex) for every path below `dir`/t, sorted, paths relative. */
async function capDump(dir: string): Promise<string> {
  const r = await execa('getfattr', ['-R', '-h', '-n', 'security.capability', '-e', 'hex', 't'], { cwd: dir, reject: false });
  // paths without the attribute are reported on stderr; the dump lists the ones that have it
  const blocks = r.stdout.trim().split(/\n\s*\n/).filter(Boolean).map((b) => b.trim());
  return blocks.sort().join('\n\n');
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-xattr-`));
  const ctx = path.join(work, 'ctx');
  fs.mkdirSync(ctx);
  fs.copyFileSync('/usr/sbin/setcap', path.join(ctx, 'setcap'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  await execa('docker', ['build', '-q', '-t', TAG, ctx], { env: { DOCKER_BUILDKIT: '0' } });
  // Docker's own export, extracted with GNU tar keeping xattrs (an independent reader)
  const name = `${PREFIX}-xattr-exp-${process.pid}`;
  await execa('docker', ['create', '--name', name, TAG, '/x']);
  try {
    fs.mkdirSync(path.join(work, 'export'));
    await execa('sh', ['-c', `docker export ${name} | tar --xattrs --xattrs-include='*' -xpf - -C ${path.join(work, 'export')} t`]);
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
  }
  dockerDump = await capDump(path.join(work, 'export'));
}, 180_000);

afterAll(async () => {
  await removeImages([TAG]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!asRoot)('sandboxes keep extended attributes (as root)', () => {
  it('docker export itself carries the capabilities (the oracle is not empty)', async () => {
    expect(dockerDump).toContain('# file: t/a/ping\nsecurity.capability=0x');
    expect(dockerDump).toContain('# file: t/owned\n');
    expect(dockerDump).toContain('# file: t/v3\n');
    const caps = (await execa('getcap', ['-r', 't'], { cwd: path.join(work, 'export') })).stdout;
    expect(caps).toContain('t/a/ping cap_net_raw=ep');
    expect(caps).toContain('t/v3 cap_sys_nice=ep');
    expect(dockerDump).toMatch(/security\.capability=0x[0-9a-f]*00/); // binary: NUL bytes in the value
  });

  it('image sandbox --output: the same security.capability bytes as Docker export, hardlinks and chowned files included; no device nodes', async () => {
    const out = path.join(work, 'sandbox');
    const r = gf(['image', 'sandbox', TAG, '--output', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.stats.xattrs).toBeGreaterThanOrEqual(5);
    expect(res.stats.skippedXattrs).toBe(0);
    expect(await capDump(out)).toBe(dockerDump);
    const caps = (await execa('getcap', ['-r', 't'], { cwd: out })).stdout;
    expect(caps).toContain('t/owned cap_net_bind_service,cap_net_admin=eip');
    expect(fs.statSync(path.join(out, 't/owned')).uid).toBe(1234);
    expect(fs.existsSync(path.join(out, 't/nulldev'))).toBe(false);
    expect(res.stats.skippedDevices).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('image sandbox --repo: the catalogs hold the same capability bytes (sqlite3 on the inflated catalogs)', async () => {
    const repo = path.join(work, 'repo');
    expect(gf(['repo', 'init', repo, '--name', 'xattr.example.org']).code).toBe(0);
    const r = gf(['image', 'sandbox', TAG, '--repo', repo, '--path', 'containers/fs/singularity/caps']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // every catalog (root + nested), read with sqlite3: name -> hex of the security.capability value
    const found = new Map([...catalogXattr(repo, work, 'security.capability')].map(([name, hex]) => [name, `0x${hex}`]));
    const fromDocker = new Map<string, string>();
    for (const block of dockerDump.split('\n\n')) {
      const [fileLine, attr] = block.split('\n');
      fromDocker.set(path.posix.basename(fileLine.slice('# file: '.length)), attr.slice('security.capability='.length));
    }
    expect(Object.fromEntries(found)).toEqual(Object.fromEntries(fromDocker));
    expect(found.has('ping-other-dir')).toBe(true); // the cross-directory hard link is a copy, with its attributes
  }, 120_000);

  it('a value above 255 bytes is refused for the repository, naming the file; the repository stays at its revision', async () => {
    const repo = path.join(work, 'repo-big');
    expect(gf(['repo', 'init', repo, '--name', 'big.example.org']).code).toBe(0);
    const before = manifestFields(repo).S;
    const archive = path.join(work, 'big.tar');
    fs.writeFileSync(archive, legacyArchive({ layers: [layerTar([{ path: 'opt/', type: 'dir' }, { path: 'opt/big', data: 'x', xattrs: { 'user.big': Buffer.alloc(300, 7) } }])], tag: 'big:1' }));
    const r = gf(['image', 'sandbox', archive, '--repo', repo, '--path', 'containers/fs/singularity/big']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('user.big is 300 bytes');
    expect(r.stderr).toContain('/opt/big');
    expect(manifestFields(repo).S).toBe(before);
    expect(fs.existsSync(path.join(repo, 'data', 'txn')) ? fs.readdirSync(path.join(repo, 'data', 'txn')) : []).toEqual([]);
  }, 60_000);
});
