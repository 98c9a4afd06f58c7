/**
 * Bearer-token auth (images/registry/auth.ts) against a real registry configured for token auth
 * (Debian docker-registry, auth.token) and a token service in the test (RS256 JWTs signed by a
 * certificate the registry trusts): anonymous pulls get a pull token; a push gets a push token
 * only with the docker config's credentials (sent as basic auth to the realm); without them the
 * push is refused (exit 2) and the registry keeps nothing of it. A credential helper named by the
 * docker config (credHelpers) that answers an identity token gets a push token by the OAuth2
 * refresh-token grant.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../images/registry/client.ts';
import { discard } from '../../../images/registry/transport.ts';
import { gf, makeFixture, startRegistry, startTokenServer, type Fixture, type Registry, type TokenServer } from './helpers.ts';

let reg: Registry;
let tokens: TokenServer;
let work: string;
let fx: Fixture;
let dockerConfig: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-token-'));
  fx = makeFixture(work);
  tokens = await startTokenServer(work, 'pusher', 'token-s3cret');
  reg = await startRegistry({ token: tokens });
  dockerConfig = path.join(work, 'docker-config');
  fs.mkdirSync(dockerConfig);
  fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [`http://${reg.host}`]: { username: 'pusher', password: 'token-s3cret' } } }));
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await tokens?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('bearer tokens', () => {
  it('push with credentials from the docker config gets a push token; an anonymous pull gets a pull token', async () => {
    const push = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/team/job:1`, '--json'], { DOCKER_CONFIG: dockerConfig });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    expect(tokens.requests.some((r) => r.user === 'pusher' && r.scopes.includes('repository:team/job:pull,push'))).toBe(true);
    const n = tokens.requests.length;
    const empty = path.join(work, 'no-config');
    fs.mkdirSync(empty);
    const pull = await gf(['image', 'flatten', `docker://${reg.host}/team/job:1`, '--oci', path.join(work, 'pulled'), '--json'], { DOCKER_CONFIG: empty });
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
    expect(JSON.parse(pull.stdout).diffId).toBe(JSON.parse(push.stdout).flatten.diffId);
    expect(tokens.requests.slice(n).every((r) => r.user === null && r.scopes.every((s) => s.endsWith(':pull')))).toBe(true);
  }, 60_000);

  it('an anonymous push gets a token without push rights: exit 2 naming the registry; the tag does not exist', async () => {
    const empty = path.join(work, 'no-config-2');
    fs.mkdirSync(empty);
    const r = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/team/other:1`], { DOCKER_CONFIG: empty });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`registry ${reg.host} refused`);
    const pull = await gf(['image', 'flatten', `docker://${reg.host}/team/other:1`, '--oci', path.join(work, 'other')], { DOCKER_CONFIG: empty });
    expect(pull.code).toBe(2);
    expect(pull.stderr).toContain('has no manifest 1 in team/other');
  }, 60_000);

  it('a credential helper of the docker config answering an identity token: the push token comes by the refresh-token grant', async () => {
    const cfg = path.join(work, 'helper-config');
    const bin = path.join(work, 'helper-bin');
    fs.mkdirSync(cfg);
    fs.mkdirSync(bin);
    // docker-credential-helpers protocol: `get`, the server address on stdin, JSON out
    fs.writeFileSync(path.join(bin, 'docker-credential-gftest'), `#!/bin/sh\nread -r addr\n[ "$1 $addr" = "get ${reg.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\necho '{"ServerURL":"${reg.host}","Username":"<token>","Secret":"refresh-token-s3cret"}'\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'gftest' } }));
    const n = tokens.requests.length;
    const push = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/team/helper:1`, '--json'], { DOCKER_CONFIG: cfg, PATH: `${bin}:${process.env.PATH}` });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    expect(tokens.requests.slice(n).some((r) => r.method === 'POST' && r.user === 'pusher' && r.scopes.includes('repository:team/helper:pull,push'))).toBe(true);
    fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ credsStore: 'missing-helper' }));
    const r = await gf(['image', 'push', fx.amd64, `docker://${reg.host}/team/helper:2`], { DOCKER_CONFIG: cfg });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('docker-credential-missing-helper is not on PATH');
    expect(r.stderr).toContain('credsStore');
  }, 60_000);

  it('a token that expires between requests is fetched again; a token service that issues only expired ones is exit 2 saying so, nothing written', async () => {
    const empty = path.join(work, 'no-config-3');
    fs.mkdirSync(empty);
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = empty;
    try {
      const client = new RegistryClient({ registry: reg.host, endpoint: reg.host, repository: 'team/job' }, 'pull');
      const manifest = async () => {
        const res = await client.request(client.path('manifests', '1'), { method: 'GET', headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } }, 'manifest 1');
        discard(res);
        return res.status;
      };
      tokens.expireNext(1, 1); // valid for about a second
      const n = tokens.requests.length;
      expect(await manifest()).toBe(200);
      await new Promise((r) => setTimeout(r, 2500));
      expect(await manifest()).toBe(200); // the cached token expired: refused once, fetched again
      expect(tokens.requests.length - n).toBe(2);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
    }
    tokens.expireNext(1000);
    const out = path.join(work, 'never');
    const r = await gf(['image', 'flatten', `docker://${reg.host}/team/job:1`, '--oci', out], { DOCKER_CONFIG: empty });
    tokens.expireNext(0);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`registry ${reg.host} refused the token its token service issued`);
    expect(r.stderr).toContain('as expired or not valid');
    expect(r.stderr).toMatch(/clocks/);
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);
});
