/**
 * Retries with backoff (images/registry/transport.ts, blob.ts): a proxy in front of a real
 * docker-registry answers the first request of every path with 503 (Retry-After: 0), and cuts the
 * first transfer of every blob off half-way; `image flatten docker://...` through it still gives
 * the image the registry holds. With retries set to 1, the same proxy makes it fail naming the
 * registry, and nothing is written.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gf, makeFixture, skopeoPush, startRegistry, type Fixture, type Registry } from './helpers.ts';

let reg: Registry;
let work: string;
let fx: Fixture;
let proxy: http.Server;
let proxyHost: string;
const seen = new Map<string, number>();
const log: string[] = [];

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-retry-'));
  fx = makeFixture(work);
  reg = await startRegistry();
  await skopeoPush(reg, fx.multi, 'multi', 'fixture/multi:1');
  proxy = http.createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n === 1 && req.url !== '/v2/') {
      log.push(`503 ${key}`);
      res.writeHead(503, { 'Retry-After': '0' });
      res.end('try again');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      const cut = n === 2 && /\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET';
      if (!cut) { ur.pipe(res); return; }
      // send half of the blob, then drop the connection
      const len = Number(ur.headers['content-length'] ?? 0);
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        if (sent >= len / 2) return;
        res.write(c.subarray(0, Math.max(1, Math.floor(len / 2) - sent)));
        sent += c.length;
        if (sent >= len / 2) { log.push(`cut ${key}`); res.socket?.destroy(); ur.destroy(); }
      });
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyHost = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  proxy?.close();
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('retries', () => {
  it('503s and a blob cut off half-way are retried; the image is the one the registry holds', async () => {
    const direct = await gf(['image', 'flatten', `docker://${reg.host}/fixture/multi:1`, '--oci', path.join(work, 'direct'), '--json']);
    expect(direct.code).toBe(0);
    const viaProxy = await gf(['image', 'flatten', `docker://${proxyHost}/fixture/multi:1`, '--oci', path.join(work, 'proxied'), '--json']);
    expect(viaProxy.stderr).toBe('');
    expect(viaProxy.code).toBe(0);
    expect(JSON.parse(viaProxy.stdout).digest).toBe(JSON.parse(direct.stdout).digest);
    expect(log.filter((l) => l.startsWith('503')).length).toBeGreaterThanOrEqual(4); // index, manifest, config, layers
    expect(log.filter((l) => l.startsWith('cut')).length).toBeGreaterThanOrEqual(2); // the two amd64 layers
  }, 60_000);

  it('with one attempt only the 503 is final: exit 1 naming the registry, nothing written', async () => {
    seen.clear();
    const tmp = path.join(work, 'tmp');
    fs.mkdirSync(tmp);
    const out = path.join(work, 'once');
    const r = await gf(['image', 'flatten', `docker://${proxyHost}/fixture/multi:1`, '--oci', out, '--tmp-dir', tmp], { GRIDFORGE_REGISTRY_RETRIES: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`registry ${proxyHost} answered HTTP 503`);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 30_000);
});
