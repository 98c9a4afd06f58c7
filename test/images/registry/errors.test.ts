/**
 * Bad registry input gets a clear error and leaves nothing half-written (no --oci / --output
 * result, nothing in --tmp-dir): an unknown tag (exit 2), a malformed reference (exit 2), a
 * manifest of an unsupported media type (Docker schema 1, served by a small HTTP server: the real
 * registry no longer accepts schema 1 pushes), a registry that accepts connections and never
 * answers (times out, exit 1, the error names the registry), and a blob tampered in the real
 * registry's storage directory (digest mismatch, exit 1, the error names the blob).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { CLI, gf, makeBombLayout, makeFixture, skopeoPush, startRegistry, type Fixture, type Registry } from './helpers.ts';

let reg: Registry;
let work: string;
let tmp: string;
let fx: Fixture;
const servers: (http.Server | net.Server)[] = [];
const sockets: net.Socket[] = [];

function listen(s: http.Server | net.Server): Promise<string> {
  servers.push(s);
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(s.address() as net.AddressInfo).port}`)));
}

/** Nothing left behind: no output, an empty --tmp-dir. */
function expectNothingWritten(out: string): void {
  expect(fs.existsSync(out)).toBe(false);
  expect(fs.readdirSync(tmp)).toEqual([]);
  expect(fs.readdirSync(path.dirname(out)).filter((n) => n.startsWith(`.${path.basename(out)}`) || n.includes('.tmp'))).toEqual([]);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-err-'));
  tmp = path.join(work, 'tmp');
  fs.mkdirSync(tmp);
  fs.mkdirSync(path.join(work, 'out'));
  fx = makeFixture(work);
  reg = await startRegistry();
  await skopeoPush(reg, fx.multi, 'multi', 'fixture/multi:1');
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('bad registry input', () => {
  it('an unknown tag is exit 2 naming the tag and repository', async () => {
    const out = path.join(work, 'out', 'unknown');
    const r = await gf(['image', 'flatten', `docker://${reg.host}/fixture/multi:nope`, '--oci', out, '--tmp-dir', tmp]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`registry ${reg.host} has no manifest nope in fixture/multi`);
    expectNothingWritten(out);
  }, 30_000);

  it('a malformed reference is exit 2 before any request (the grammar: parse.unit.test.ts)', async () => {
    const r = await gf(['image', 'sandbox', `docker://${reg.host}/Fixture/multi:1`, '--output', path.join(work, 'out', 'bad')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('repository component "Fixture"');
  }, 30_000);

  it('a manifest of an unsupported media type (schema 1) is exit 2 naming the type', async () => {
    const host = await listen(http.createServer((req, res) => {
      if (req.url === '/v2/') { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{}'); return; }
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
      res.end(JSON.stringify({ schemaVersion: 1, name: 'old/image', tag: '1', fsLayers: [], history: [] }));
    }));
    const out = path.join(work, 'out', 'schema1');
    const r = await gf(['image', 'flatten', `docker://${host}/old/image:1`, '--oci', out, '--tmp-dir', tmp]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unsupported media type "application/vnd.docker.distribution.manifest.v1+prettyjws"');
    expectNothingWritten(out);
  }, 30_000);

  it('a registry that accepts and never answers times out with an error naming it (exit 1)', async () => {
    const host = await listen(net.createServer((s) => { sockets.push(s); }));
    const out = path.join(work, 'out', 'hang');
    const t0 = Date.now();
    const r = await gf(['image', 'flatten', `docker://${host}/any/image:1`, '--oci', out, '--tmp-dir', tmp], { GRIDFORGE_REGISTRY_TIMEOUT: '1', GRIDFORGE_REGISTRY_RETRIES: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`registry ${host} failed`);
    expect(r.stderr).toContain('no answer within 1 s');
    expect(Date.now() - t0).toBeLessThan(20_000);
    expectNothingWritten(out);
  }, 30_000);

  it('SIGTERM while a layer downloads removes the download directory (exit 143)', async () => {
    // a proxy that forwards everything but stalls layer downloads
    const port = Number(reg.host.split(':')[1]);
    const host = await listen(http.createServer((req, res) => {
      if (/\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET' && !req.url!.includes(fx.amd64ManifestDigest)) {
        const cfg = JSON.parse(fs.readFileSync(path.join(fx.amd64, 'blobs/sha256', fx.amd64ManifestDigest.slice(7)), 'utf8')).config.digest;
        if (!req.url!.endsWith(cfg)) { sockets.push(req.socket); return; } // never answered
      }
      const up = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers }, (ur) => { res.writeHead(ur.statusCode ?? 502, ur.headers); ur.pipe(res); });
      req.pipe(up);
    }));
    const out = path.join(work, 'out', 'signalled');
    const child = execa(process.execPath, [CLI, 'image', 'flatten', `docker://${host}/fixture/multi:1`, '--oci', out, '--tmp-dir', tmp], { reject: false, env: { GRIDFORGE_QUIET: '1' } });
    const deadline = Date.now() + 20_000;
    while (!fs.readdirSync(tmp).some((n) => n.startsWith('gridforge-pull-')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(tmp).some((n) => n.startsWith('gridforge-pull-'))).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // the layer requests are in flight
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    expectNothingWritten(out);
  }, 40_000);

  it('a blob tampered in the registry storage is a digest mismatch naming the blob (exit 1); nothing is written', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(fx.amd64, 'blobs/sha256', fx.amd64ManifestDigest.slice(7)), 'utf8'));
    const layer = manifest.layers[1].digest as string; // the uncompressed layer
    const data = path.join(reg.storage, 'docker/registry/v2/blobs/sha256', layer.slice(7, 9), layer.slice(7), 'data');
    const bytes = fs.readFileSync(data);
    bytes[600] ^= 0xff; // inside the file content of the second layer's first file
    fs.writeFileSync(data, bytes);
    for (const [cmd, outFlag] of [['flatten', '--oci'], ['sandbox', '--output']]) {
      const out = path.join(work, 'out', `tampered-${cmd}`);
      const r = await gf(['image', cmd, `docker://${reg.host}/fixture/multi:1`, outFlag, out, '--tmp-dir', tmp]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`blob ${layer} from ${reg.host} hashes to sha256:`);
      expectNothingWritten(out);
    }
  }, 60_000);

  it('a gzip layer that inflates beyond the per-layer limit stops while it downloads (exit 2 naming the layer); nothing is written', async () => {
    await skopeoPush(reg, makeBombLayout(work, 48 << 20), 'bomb', 'fixture/bomb:1');
    const out = path.join(work, 'out', 'bomb-oci');
    const r = await gf(['image', 'flatten', `docker://${reg.host}/fixture/bomb:1`, '--oci', out, '--tmp-dir', tmp], { GRIDFORGE_MAX_LAYER_SIZE: '8M' });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/uncompressed layer is larger than the per-layer limit of 8 MiB \(\d+ bytes so far\)/);
    expect(r.stderr).toContain(`docker://${reg.host}/fixture/bomb:1 (layer sha256:`);
    expect(r.stderr).toContain('decompression bomb');
    expectNothingWritten(out);
    const ok = await gf(['image', 'flatten', `docker://${reg.host}/fixture/bomb:1`, '--oci', out, '--tmp-dir', tmp, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
  }, 60_000);
});
