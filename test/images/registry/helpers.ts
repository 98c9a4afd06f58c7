/**
 * A real registry for the registry-client suites: Debian's `docker-registry` (distribution 2.8)
 * started on loopback on a free port, plain HTTP or TLS (a self-signed certificate made with
 * openssl), optionally with htpasswd basic auth (htpasswd from apache2-utils); stopped and its
 * storage removed by `stop()`. Fixture images are hand-made OCI layouts (a two-layer amd64
 * image, gzip and plain layers, and a one-layer arm64 image under one index) pushed with skopeo,
 * an independent client.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { imageConfig, layerTar, sha256hex } from '../flatten/helpers.ts';

export const CLI = path.resolve(import.meta.dirname, '../../../scripts/bin/gridforge.mjs');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Registry {
  host: string; // 127.0.0.1:port
  storage: string;
  dir: string;
  /** PEM of the self-signed certificate (TLS registries). */
  cert?: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  tls?: boolean;
  /** htpasswd basic auth with this user and password. */
  basic?: { user: string; password: string };
  /** Token auth: the registry trusts tokens of this realm signed by this certificate (tokenServer). */
  token?: { realm: string; service: string; issuer: string; certificate: string };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-'));
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let tls = '';
  let cert: string | undefined;
  if (opts.tls) {
    cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', cert], { stdio: 'ignore' });
    tls = `\n  tls:\n    certificate: ${cert}\n    key: ${path.join(dir, 'key.pem')}`;
  }
  let auth = '';
  if (opts.basic) {
    execFileSync('htpasswd', ['-Bbc', path.join(dir, 'htpasswd'), opts.basic.user, opts.basic.password], { stdio: 'ignore' });
    auth = `\nauth:\n  htpasswd:\n    realm: gridforge-test\n    path: ${path.join(dir, 'htpasswd')}`;
  }
  if (opts.token) {
    auth = `\nauth:\n  token:\n    realm: ${opts.token.realm}\n    service: ${opts.token.service}\n    issuer: ${opts.token.issuer}\n    rootcertbundle: ${opts.token.certificate}`;
  }
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: ${host}${tls}${auth}
`);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host, storage, dir, cert,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const gzip = (b: Buffer) => zlib.gzipSync(b, { level: 1 });

export interface Fixture {
  /** OCI layout with one index (ref name "multi") of an amd64 and an arm64 image. */
  multi: string;
  /** OCI layout with the amd64 image alone (ref name "amd64"). */
  amd64: string;
  /** OCI layout with the arm64 image alone. */
  arm64: string;
  amd64ManifestDigest: string;
  arm64ManifestDigest: string;
  indexDigest: string;
}

interface Img { config: Buffer; layers: Buffer[]; mediaTypes: string[]; manifest: Buffer }

function image(arch: string, rawLayers: Buffer[], compress: boolean[]): Img {
  const cfg = JSON.parse(imageConfig({ layers: rawLayers, config: { Env: ['PATH=/usr/bin:/bin', `ARCH=${arch}`], Cmd: ['/bin/sh'] } }).toString());
  cfg.architecture = arch;
  if (arch === 'arm64') cfg.variant = 'v8';
  const config = json(cfg);
  const layers = rawLayers.map((l, i) => (compress[i] ? gzip(l) : l));
  const mediaTypes = compress.map((c) => (c ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar'));
  const manifest = json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256hex(config)}`, size: config.length },
    layers: layers.map((l, i) => ({ mediaType: mediaTypes[i], digest: `sha256:${sha256hex(l)}`, size: l.length })),
  });
  return { config, layers, mediaTypes, manifest };
}

function writeLayout(dir: string, blobs: Buffer[], top: object): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  for (const b of blobs) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', sha256hex(b)), b);
  fs.writeFileSync(path.join(dir, 'index.json'), json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [top] }));
}

/** The fixture images (deterministic), written below `work`. */
export function makeFixture(work: string): Fixture {
  const l1 = layerTar([
    { path: 'etc/', type: 'dir' }, { path: 'etc/os-release', data: 'ID=gridforge-fixture\n' },
    { path: 'bin/', type: 'dir' }, { path: 'bin/tool', data: crypto.createHash('sha512').update('tool').digest(), mode: 0o755 },
    { path: 'opt/', type: 'dir' }, { path: 'opt/gone', data: 'removed by layer 2\n' }, { path: 'opt/hl-a', data: 'shared\n' },
    { path: 'opt/hl-b', type: 'hardlink', link: 'opt/hl-a' },
  ]);
  const l2 = layerTar([{ path: 'opt/', type: 'dir' }, { path: 'opt/.wh.gone', data: '' }, { path: 'opt/new', data: 'layer two\n' }, { path: 'opt/link', type: 'symlink', link: 'new' }]);
  const la = layerTar([{ path: 'etc/', type: 'dir' }, { path: 'etc/os-release', data: 'ID=gridforge-fixture-arm64\n' }, { path: 'bin/', type: 'dir' }, { path: 'bin/tool', data: 'aarch64 stand-in\n', mode: 0o755 }]);
  const amd = image('amd64', [l1, l2], [true, false]);
  const arm = image('arm64', [la], [true]);
  const amdDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(amd.manifest)}`, size: amd.manifest.length };
  const armDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(arm.manifest)}`, size: arm.manifest.length };
  const index = json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...amdDesc, platform: { os: 'linux', architecture: 'amd64' } }, { ...armDesc, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
  });
  const allBlobs = [amd.config, ...amd.layers, amd.manifest, arm.config, ...arm.layers, arm.manifest];
  const multi = path.join(work, 'fixture-multi');
  writeLayout(multi, [...allBlobs, index], { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${sha256hex(index)}`, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
  const amd64 = path.join(work, 'fixture-amd64');
  writeLayout(amd64, [amd.config, ...amd.layers, amd.manifest], { ...amdDesc, annotations: { 'org.opencontainers.image.ref.name': 'amd64' } });
  const arm64 = path.join(work, 'fixture-arm64');
  writeLayout(arm64, [arm.config, ...arm.layers, arm.manifest], { ...armDesc, annotations: { 'org.opencontainers.image.ref.name': 'arm64' } });
  return { multi, amd64, arm64, amd64ManifestDigest: amdDesc.digest, arm64ManifestDigest: armDesc.digest, indexDigest: `sha256:${sha256hex(index)}` };
}

/** A one-layer image whose gzip layer (a few KiB) inflates to a file of `plainBytes` zeros: a decompression bomb for small limits. */
export function makeBombLayout(work: string, plainBytes: number): string {
  const img = image('amd64', [layerTar([{ path: 'zeros', data: Buffer.alloc(plainBytes) }])], [true]);
  const dir = path.join(work, 'fixture-bomb');
  writeLayout(dir, [img.config, ...img.layers, img.manifest], { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(img.manifest)}`, size: img.manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'bomb' } });
  return dir;
}

/**
 * A two-layer image whose layers are one tar twice: gzipped, then plain (so the plain blob's digest
 * is the gzip layer's DiffID); a second file in the top layer tells them apart after flattening.
 */
export function makeTwinLayerLayout(work: string): string {
  const l = layerTar([{ path: 'twin/', type: 'dir' }, { path: 'twin/file', data: 'same layer twice\n' }]);
  const img = image('amd64', [l, l], [true, false]);
  const dir = path.join(work, 'fixture-twin');
  writeLayout(dir, [img.config, ...img.layers, img.manifest], { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(img.manifest)}`, size: img.manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'twin' } });
  return dir;
}

/** skopeo copy (all platforms) from an OCI layout into the registry. */
export async function skopeoPush(reg: Registry, layout: string, refName: string, target: string, extra: string[] = []): Promise<void> {
  await execa('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', ...extra, `oci:${layout}:${refName}`, `docker://${reg.host}/${target}`]);
}

export interface Run { code: number; stdout: string; stderr: string }

/** The CLI, as a user runs it. */
export async function gf(args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<Run> {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, env: { GRIDFORGE_QUIET: '1', ...env }, timeout });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export { sha256hex };

// ------------------------------------------------------------------ token server

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certificate: string;
  /** Every token request: the scopes asked for and the user (or null: anonymous). */
  requests: { scopes: string[]; user: string | null; method?: string }[];
  /**
   * The next `n` tokens expire `afterSeconds` from now as the registry sees it (its 60 s leeway
   * for clock skew included: distribution registry/auth/token/token.go Leeway); default -240:
   * issued already expired.
   */
  expireNext(n: number, afterSeconds?: number): void;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A token service as distribution's token auth expects it (docs "Token Authentication
 * Specification" and "Token Authentication Implementation"): RS256 JWTs with the signing
 * certificate in `x5c`, `access` granting pull to anyone and push only to `user`:`password`.
 */
export async function startTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const key = path.join(dir, 'token-key.pem');
  const certificate = path.join(dir, 'token-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=gridforge-token-issuer', '-keyout', key, '-out', certificate], { stdio: 'ignore' });
  const der = new crypto.X509Certificate(fs.readFileSync(certificate)).raw;
  const signKey = crypto.createPrivateKey(fs.readFileSync(key));
  const service = 'gridforge-test-registry';
  const issuer = 'gridforge-test-issuer';
  const requests: TokenServer['requests'] = [];
  let expiring = 0;
  let expiresAfter = -240;
  const http = await import('node:http');
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    let scopes = url.searchParams.getAll('scope');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    let [u, p] = basic ? Buffer.from(basic[1], 'base64').toString().split(':') : [null, null];
    if (basic && (u !== user || p !== password)) { res.writeHead(401); res.end(); return; }
    if (req.method === 'POST') {
      // OAuth2 refresh-token grant (distribution docs, "OAuth2 Token Authentication"): the identity
      // token `refresh-<password>` stands for the user
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== `refresh-${password}`) { res.writeHead(401); res.end(); return; }
      [u, p] = [user, password];
      scopes = form.getAll('scope').flatMap((s) => s.split(' '));
    }
    requests.push({ scopes, user: u, method: req.method });
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: actions.split(',').filter((a) => a === 'pull' || (a === 'push' && u === user)) };
    });
    const now = Math.floor(Date.now() / 1000);
    const exp = expiring-- > 0 ? now + expiresAfter - 60 : now + 300;
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: u ?? '', aud: service, exp, nbf: Math.min(now, exp) - 10, iat: Math.min(now, exp) - 10, jti: crypto.randomBytes(8).toString('hex'), access }));
    const sig = crypto.sign('sha256', Buffer.from(`${header}.${claims}`), signKey);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(req.method === 'POST' ? { access_token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300 } : { token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const realm = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/token`;
  return { realm, service, issuer, certificate, requests, expireNext: (n, afterSeconds = -240) => { expiring = n; expiresAfter = afterSeconds; }, stop: () => new Promise((r) => server.close(() => r())) };
}
