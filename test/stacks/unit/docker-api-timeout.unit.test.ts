/**
 * A Docker daemon that accepts a connection and never answers (hung dockerd, a wedged socket
 * proxy) must not hang a deploy: every versioned call of stacks/docker-api.ts is bounded and fails
 * naming the call and the daemon. The far end is a unix socket server that reads and never writes.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CALL_TIMEOUT_MS, DockerApi } from '../../../stacks/docker-api.ts';

let dir: string;
let sock: string;
let server: net.Server;
const open = new Set<net.Socket>();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-hung-docker-'));
  sock = path.join(dir, 'docker.sock');
  server = net.createServer((c) => {
    open.add(c);
    c.on('data', () => undefined); // reads the request, never answers
    c.on('close', () => open.delete(c));
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

afterAll(async () => {
  for (const c of open) c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const connect = () => new Promise<Duplex>((resolve, reject) => {
  const s = net.connect(sock, () => resolve(s));
  s.once('error', reject);
});

describe('docker API calls against a daemon that never answers', () => {
  it('are bounded by default (minutes, not for ever)', () => {
    expect(DEFAULT_CALL_TIMEOUT_MS).toBeGreaterThan(0);
    expect(DEFAULT_CALL_TIMEOUT_MS).toBeLessThanOrEqual(10 * 60_000);
  });

  it('a versioned call and the version negotiation fail at the bound, naming the call and the daemon', async () => {
    const docker = new DockerApi(connect, 'hung daemon at test.sock', 400);
    const t0 = Date.now();
    await expect(docker.call('POST', '/containers/vobox/start')).rejects.toThrow(/docker API POST \/v1\.41\/containers\/vobox\/start failed: timed out after 400 ms/);
    await expect(docker.negotiate()).rejects.toThrow(/docker API GET \/version failed: timed out after 400 ms/);
    expect(Date.now() - t0).toBeLessThan(5000);
    const err = await docker.inspectContainer('vobox').catch((e: Error & { where?: string }) => e);
    expect((err as { where?: string }).where).toBe('hung daemon at test.sock');
  });
});
