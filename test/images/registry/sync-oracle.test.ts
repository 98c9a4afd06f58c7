/**
 * `image sync` writes what `image sandbox --repo` writes, Docker's own view included: an image
 * built by the real engine (setcap: a binary security.capability on a file with a hard link in
 * another directory, a file owned by another user, a device node, a FIFO, setuid bits) is pushed
 * to a local docker-registry with skopeo (from docker-daemon:), synced by a wish list, and
 * compared (1) entry by entry with `image sandbox --repo` of the engine image in the same
 * repository (reader walk: type, mode, owner, size, content hash, link target, xattrs), and (2)
 * its capability bytes, read with sqlite3 from the inflated catalogs, with `docker export`
 * extracted by GNU tar --xattrs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { openRepository } from '../../../cvmfs-publish/index.ts';
import { catalogXattr } from '../../cvmfs-publish/helpers.ts';
import { PREFIX, removeImages } from '../flatten/helpers.ts';
import { gf, startRegistry, type Registry } from './helpers.ts';

const TAG = `${PREFIX}-syncoracle:${process.pid}`;
const asRoot = process.getuid?.() === 0;
const DOCKERFILE = `
FROM gridforge/base:debian-bookworm
COPY setcap /usr/local/sbin/setcap
RUN mkdir -p /t/a /t/b && cp /bin/true /t/a/ping && /usr/local/sbin/setcap cap_net_raw+ep /t/a/ping \\
 && ln /t/a/ping /t/b/ping-other-dir && cp /bin/true /t/owned && chown 1234:5678 /t/owned \\
 && /usr/local/sbin/setcap cap_net_admin+eip /t/owned && cp /bin/true /t/suid && chmod 4755 /t/suid \\
 && mknod /t/nulldev c 1 3 && mkfifo /t/fifo && rm /usr/local/sbin/setcap
`;

let reg: Registry;
let work: string;
let repo: string;

/** Every security.capability in the repository's catalogs (sqlite3 on the inflated objects): file name -> hex. */
const catalogCaps = (): Map<string, string> => catalogXattr(repo, work, 'security.capability');

async function walkTree(base: string): Promise<Map<string, unknown>> {
  const reader = await openRepository(repo);
  const out = new Map<string, unknown>();
  for await (const e of reader.walk(base)) {
    const rel = e.path.replace(/^\/+/, '').slice(base.length).replace(/^\//, '');
    if (rel.startsWith('.singularity.d')) continue; // labels and runscript name the source
    out.set(rel, { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, hash: e.hash, target: e.target, xattrs: e.xattrs });
  }
  return out;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-oracle-'));
  const ctx = path.join(work, 'ctx');
  fs.mkdirSync(ctx);
  fs.copyFileSync('/usr/sbin/setcap', path.join(ctx, 'setcap'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  await execa('docker', ['build', '-q', '-t', TAG, ctx], { env: { DOCKER_BUILDKIT: '0' } });
  reg = await startRegistry();
  await execa('skopeo', ['copy', '--dest-tls-verify=false', `docker-daemon:${TAG}`, `docker://${reg.host}/oracle/caps:1`]);
  repo = path.join(work, 'repo');
  expect((await gf(['repo', 'init', repo, '--name', 'oracle.example.org'])).code).toBe(0);
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await removeImages([TAG]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!asRoot)('image sync equals image sandbox --repo and docker export', () => {
  it('the synced tree equals the engine image written by image sandbox --repo, entry by entry', async () => {
    const wish = path.join(work, 'wish.yaml');
    fs.writeFileSync(wish, `images:\n  - image: docker://${reg.host}/oracle/caps\n    tags: ["1"]\n`);
    const s = await gf(['image', 'sync', wish, '--repo', repo, '--json']);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    const synced = JSON.parse(s.stdout).plan.write[0].path as string;
    const d = await gf(['image', 'sandbox', TAG, '--repo', repo, '--path', 'containers/fs/singularity/direct']);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    const a = await walkTree('containers/fs/singularity/direct');
    const b = await walkTree(synced);
    expect(b.size).toBeGreaterThan(1000);
    expect(b).toEqual(a);
    expect(b.has('t/nulldev')).toBe(false); // never device nodes
    expect((b.get('t/suid') as { mode: number }).mode & 0o6000).toBe(0); // setuid dropped
  }, 120_000);

  it('the capabilities in the catalogs are byte for byte those of docker export', async () => {
    const name = `${PREFIX}-syncoracle-exp-${process.pid}`;
    await execa('docker', ['create', '--name', name, TAG, '/x']);
    const exp = path.join(work, 'export');
    fs.mkdirSync(exp);
    try {
      await execa('sh', ['-c', `docker export ${name} | tar --xattrs --xattrs-include='*' -xpf - -C ${exp} t`]);
    } finally {
      await execa('docker', ['rm', '-f', name], { reject: false });
    }
    const dump = (await execa('getfattr', ['-R', '-h', '-n', 'security.capability', '-e', 'hex', 't'], { cwd: exp, reject: false })).stdout;
    const expected = new Map<string, string>();
    for (const block of dump.trim().split(/\n\s*\n/)) {
      const [f, v] = block.trim().split('\n');
      expected.set(path.posix.basename(f.slice('# file: '.length)), v.slice('security.capability=0x'.length));
    }
    expect(expected.size).toBe(3); // ping, its hard link, owned
    expect(Object.fromEntries(catalogCaps())).toEqual(Object.fromEntries(expected));
  }, 60_000);
});
