/**
 * `gridforge image push` (images/registry/push-image.ts) to a real registry with TLS (a
 * self-signed certificate trusted through GRIDFORGE_REGISTRY_CA) and htpasswd basic auth
 * (credentials from the docker config's `auths`, DOCKER_CONFIG pointing at it); skopeo reads what
 * it wrote as an independent client (`inspect`, `copy` to an OCI layout), and the pushed image
 * comes back through `docker://` as the same flattened image. Without credentials, or without
 * trusting the certificate, the push fails with an error naming the registry and the fix.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { UsageError } from '../../../base/errors.ts';
import { pushImage } from '../../../images/registry/push-image.ts';
import { gf, makeFixture, startRegistry, type Fixture, type Registry } from './helpers.ts';

const USER = 'gridforge';
const PASSWORD = 'pushing-s3cret';
let reg: Registry;
let work: string;
let fx: Fixture;
let env: Record<string, string>;
let creds: string[];

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-push-'));
  fx = makeFixture(work);
  reg = await startRegistry({ tls: true, basic: { user: USER, password: PASSWORD } });
  const dockerConfig = path.join(work, 'docker-config');
  fs.mkdirSync(dockerConfig);
  fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
  env = { DOCKER_CONFIG: dockerConfig, GRIDFORGE_REGISTRY_CA: reg.cert! };
  creds = ['--creds', `${USER}:${PASSWORD}`];
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('image push', () => {
  let pushed: { digest: string; flatten: { digest: string; diffId: string } };

  it('pushes one OCI manifest + config + one layer over TLS with basic auth; skopeo inspect agrees', async () => {
    const r = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/alice/job:2026.11`, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    pushed = JSON.parse(r.stdout);
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const raw = JSON.parse((await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${reg.host}/alice/job:2026.11`])).stdout);
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(raw.layers).toHaveLength(1);
    expect(raw.config.digest).toBe(pushed.flatten.digest);
    const info = JSON.parse((await execa('skopeo', ['inspect', '--tls-verify=false', ...creds, `docker://${reg.host}/alice/job:2026.11`])).stdout);
    expect(info.Digest).toBe(pushed.digest);
    expect(info.Architecture).toBe('amd64');
    expect(info.Env).toContain('ARCH=amd64');
    // the certificate trusted through a cert dir instead of --tls-verify=false
    const certDir = path.join(work, 'certs');
    fs.mkdirSync(certDir, { recursive: true });
    fs.copyFileSync(reg.cert!, path.join(certDir, 'ca.crt'));
    const viaCertDir = JSON.parse((await execa('skopeo', ['inspect', '--cert-dir', certDir, ...creds, `docker://${reg.host}/alice/job:2026.11`])).stdout);
    expect(viaCertDir.Digest).toBe(pushed.digest);
  }, 60_000);

  it('skopeo copies it to an OCI layout that flattens to the same image; docker:// reads it back the same', async () => {
    const copy = path.join(work, 'copied');
    await execa('skopeo', ['copy', '--preserve-digests', '--src-tls-verify=false', '--src-creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/alice/job:2026.11`, `oci:${copy}:job`]);
    const index = JSON.parse(fs.readFileSync(path.join(copy, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(pushed.digest);
    const layer = JSON.parse(fs.readFileSync(path.join(copy, 'blobs/sha256', pushed.digest.slice(7)), 'utf8')).layers[0];
    // sent gzipped (the default): the blob gunzips to the layer whose digest is the DiffID
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const blob = fs.readFileSync(path.join(copy, 'blobs/sha256', layer.digest.slice(7)));
    expect(blob.length).toBeLessThan(0.8 * zlib.gunzipSync(blob).length);
    expect(`sha256:${crypto.createHash('sha256').update(zlib.gunzipSync(blob)).digest('hex')}`).toBe(pushed.flatten.diffId);
    const back = await gf(['image', 'flatten', `docker://${reg.host}/alice/job@${pushed.digest}`, '--oci', path.join(work, 'back'), '--json'], env);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(JSON.parse(back.stdout).diffId).toBe(pushed.flatten.diffId);
  }, 60_000);

  it('--compression none sends the plain tar (its digest is the DiffID); another value is exit 2 before any work', async () => {
    const r = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/alice/plain:1`, '--compression', 'none', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const raw = JSON.parse((await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${reg.host}/alice/plain:1`])).stdout);
    expect(raw.layers[0]).toMatchObject({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: JSON.parse(r.stdout).flatten.diffId });
    const bad = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/alice/plain:2`, '--compression', 'zstd'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--compression "zstd" is not gzip or none');
  }, 60_000);

  it('pushing again uploads nothing new; a docker:// source can be pushed to another repository', async () => {
    const again = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/alice/job:again`, '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ digest: pushed.digest, uploaded: 0 });
    const copy = await gf(['image', 'push', `docker://${reg.host}/alice/job:2026.11`, `docker://${reg.host}/bob/job:1`, '--json'], env);
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);
  }, 60_000);

  it('without credentials: exit 2 naming the registry and docker login; without the CA: exit 1 naming the certificate problem', async () => {
    const empty = path.join(work, 'empty-config');
    fs.mkdirSync(empty, { recursive: true });
    const noCreds = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/alice/job:x`], { ...env, DOCKER_CONFIG: empty });
    expect(noCreds.code).toBe(2);
    expect(noCreds.stderr).toContain(`registry ${reg.host} refused`);
    expect(noCreds.stderr).toContain('without credentials');
    expect(noCreds.stderr).toContain(`docker login ${reg.host}`);
    const noCa = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/alice/job:x`], { DOCKER_CONFIG: env.DOCKER_CONFIG, GRIDFORGE_REGISTRY_RETRIES: '1' });
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toMatch(/self[- ]signed certificate/);
    expect(noCa.stderr).toContain('GRIDFORGE_REGISTRY_CA');
    const tags = JSON.parse((await execa('skopeo', ['list-tags', '--tls-verify=false', ...creds, `docker://${reg.host}/alice/job`])).stdout).Tags.sort();
    expect(tags).toEqual(['2026.11', 'again']);
  }, 60_000);

  it('a push target without an explicit tag, with a digest or without docker:// is a usage error before any work', async () => {
    for (const t of [`docker://${reg.host}/alice/job`, `docker://${reg.host}/alice/job@sha256:${'a'.repeat(64)}`, `${reg.host}/alice/job:1`]) {
      await expect(pushImage({ source: fx.amd64, target: t }), t).rejects.toBeInstanceOf(UsageError);
    }
  });
});
