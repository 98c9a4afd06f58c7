/**
 * Image upload streaming (stacks/resources/image.ts loadImage, stacks/docker-api.ts raw): every byte of the
 * archive reaches the daemon however long the connection takes to open. The old code let a counting
 * stream flow before the request existed, so on a slow SSH channel open the start of the archive was
 * lost ("archive/tar: invalid tar header"). The delay is injected in the connect function DockerApi
 * is given (where session.ts puts ssh.forwardUnix); the far ends are a loopback HTTP server that
 * records the sha256 of what it receives, the local Docker engine, and a test host's dockerd over SSH.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { DockerApi } from '../../../stacks/docker-api.ts';
import { loadImage } from '../../../stacks/resources/image.ts';
import { archiveImageInfo } from '../../../stacks/deploy-image.ts';
import { parseSiteSpec } from '../../../stacks/spec.ts';
import { SshHost } from '../../../stacks/ssh.ts';
import { cleanupStale, createLan, createTestHost, type Lan, type TestHost } from '../../support/testhost/index.ts';
import { siteDoc } from './helpers.ts';

const PREFIX = 'gfis';
const TAG = `gfis-stream:${process.pid}`;
const DELAYS = [0, 50, 300, 1000];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let archive: string;
let archiveSha: string;
let archiveBytes: number;
let imageId: string;

/** A connect function that opens a unix socket only after `delayMs` (an SSH channel open across a WAN). */
function slowUnix(path: string, delayMs: number): () => Promise<Duplex> {
  return async () => {
    await sleep(delayMs);
    return await new Promise<Duplex>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
  };
}

/** Stands in for dockerd: records the sha256 and size of each /images/load body; every image "exists". */
function recordingDaemon(sock: string): Promise<{ received: { sha: string; bytes: number }[]; close(): Promise<void> }> {
  const received: { sha: string; bytes: number }[] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url?.includes('/images/load')) {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        bytes += d.length;
      });
      req.on('end', () => {
        received.push({ sha: h.digest('hex'), bytes });
        res.end('{"stream":"Loaded image\\n"}\n');
      });
      return;
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ Id: imageId }));
  });
  return new Promise((resolve) =>
    server.listen(sock, () => resolve({ received, close: () => new Promise<void>((r) => server.close(() => r())) })),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gfis-'));
  // A small real image: a rootfs of 3 MiB of random bytes, imported and saved by the local engine.
  mkdirSync(join(dir, 'rootfs'));
  writeFileSync(join(dir, 'rootfs', 'payload'), randomBytes(3 * 1048576));
  await execa('tar', ['-C', join(dir, 'rootfs'), '-cf', join(dir, 'rootfs.tar'), '.']);
  await execa('docker', ['import', join(dir, 'rootfs.tar'), TAG]);
  archive = join(dir, 'img.tar');
  await execa('docker', ['save', TAG, '-o', archive]);
  await execa('docker', ['rmi', TAG]);
  const buf = readFileSync(archive);
  archiveSha = createHash('sha256').update(buf).digest('hex');
  archiveBytes = buf.length;
  imageId = (await archiveImageInfo(archive)).id;
});
afterAll(async () => {
  await execa('docker', ['rmi', '-f', TAG], { reject: false });
  rmSync(dir, { recursive: true, force: true });
});

describe('image upload over a slow connection, far end records a digest', () => {
  let daemon: Awaited<ReturnType<typeof recordingDaemon>>;
  let sock: string;
  beforeAll(async () => {
    sock = join(dir, 'daemon.sock');
    daemon = await recordingDaemon(sock);
  });
  afterAll(() => daemon.close());

  for (const delay of DELAYS) {
    it(`loadImage delivers the whole archive when the connection opens after ${delay} ms`, async () => {
      const docker = new DockerApi(slowUnix(sock, delay), 'recording daemon');
      const n = daemon.received.length;
      await loadImage(docker, { kind: 'archive', path: archive, id: imageId, repoTags: [TAG] }, 'recording daemon');
      expect(daemon.received.length).toBe(n + 1);
      expect(daemon.received[n]).toEqual({ sha: archiveSha, bytes: archiveBytes });
    });
  }

  it('raw leaves a stream body unread until the connection is up (300 ms)', async () => {
    const docker = new DockerApi(slowUnix(sock, 300), 'recording daemon');
    const n = daemon.received.length;
    const r = await docker.raw('POST', '/v1.41/images/load', createReadStream(archive));
    expect(r.status).toBe(200);
    expect(daemon.received[n]).toEqual({ sha: archiveSha, bytes: archiveBytes });
  });

  it('a source that fails mid-way fails the upload instead of hanging it', async () => {
    const docker = new DockerApi(slowUnix(sock, 50), 'recording daemon');
    // A directory: createReadStream opens it, the first read fails with EISDIR.
    await expect(docker.raw('POST', '/v1.41/images/load', () => createReadStream(dir))).rejects.toThrow(/EISDIR/);
  });
});

describe('image upload into a real dockerd', () => {
  it('loads the archive into the local engine through a connection that opens after 300 ms', async () => {
    const docker = new DockerApi(slowUnix('/var/run/docker.sock', 300), 'local engine');
    await docker.negotiate();
    await execa('docker', ['rmi', '-f', TAG], { reject: false });
    await loadImage(docker, { kind: 'archive', path: archive, id: imageId, repoTags: [TAG] }, 'local engine');
    expect((await docker.inspectImage(TAG))?.Id).toBe(imageId);
  });

  describe('on a test host over SSH (the deploy path: forwarded docker socket)', () => {
    let lan: Lan;
    let host: TestHost;
    let ssh: SshHost;
    beforeAll(async () => {
      await cleanupStale(PREFIX);
      lan = await createLan(PREFIX);
      host = await createTestHost(lan, { name: 'h1' });
      const spec = parseSiteSpec(siteDoc(lan, host, archive, join(dir, 'vol')));
      ssh = await SshHost.connect(spec);
    });
    afterAll(async () => {
      ssh?.close();
      await cleanupStale(PREFIX).catch(() => {});
    });

    for (const delay of [0, 300, 1000]) {
      it(`docker load on the host gets the whole archive when the channel opens after ${delay} ms`, async () => {
        const docker = new DockerApi(async () => {
          await sleep(delay);
          return ssh.forwardUnix('/var/run/docker.sock');
        }, `${ssh.label} docker.sock`);
        await docker.negotiate();
        await host.exec(`docker rmi -f ${TAG}`);
        await loadImage(docker, { kind: 'archive', path: archive, id: imageId, repoTags: [TAG] }, ssh.label);
        expect((await host.exec(`docker image inspect --format '{{.Id}}' ${TAG}`)).stdout.trim()).toBe(imageId);
      });
    }

    it('exec with a stream stdin delivers every byte, and a failing stdin fails the call instead of hanging', async () => {
      const r = await ssh.exec('sha256sum', { stdin: createReadStream(archive) });
      expect(r.stdout.split(' ')[0]).toBe(archiveSha);
      await expect(ssh.exec('cat > /dev/null', { stdin: createReadStream(dir), timeoutMs: 60_000 })).rejects.toThrow(/cannot send its input: .*EISDIR/);
    });

    it('a remote command silent for host.commandIdleTimeoutMs is stopped and fails saying so; output or input sent keeps a long one going', async () => {
      const doc = siteDoc(lan, host, archive, join(dir, 'vol')) as { host: Record<string, unknown> };
      const quick = await SshHost.connect(parseSiteSpec({ ...doc, host: { ...doc.host, commandIdleTimeoutMs: 1500 } }));
      try {
        expect(quick.idleTimeoutMs).toBe(1500);
        const t0 = Date.now();
        const err = await quick.exec('sleep 30.25').catch((e: Error & { hint?: string }) => e);
        expect(Date.now() - t0).toBeLessThan(10_000);
        expect((err as Error).message).toMatch(/command on .* failed: no output and no input for 1\.5 s: stopped/);
        expect((err as { hint?: string }).hint).toContain('host.commandIdleTimeoutMs');
        // 3 s in all, never 1.5 s without output
        const talk = await quick.exec('for i in 1 2 3 4 5 6; do echo $i; sleep 0.5; done');
        expect(talk.stdout.split('\n').filter(Boolean)).toEqual(['1', '2', '3', '4', '5', '6']);
        // 3 s in all of input trickling in, no output until the end
        const slow = Readable.from((async function* () { for (let i = 0; i < 6; i++) { await sleep(500); yield Buffer.from(`${i}\n`); } })());
        expect((await quick.exec('wc -l', { stdin: slow })).stdout.trim()).toBe('6');
        // the connection is still usable after a stopped command
        expect((await quick.exec('echo ok')).stdout.trim()).toBe('ok');
      } finally {
        quick.close();
      }
    });
  });
});
