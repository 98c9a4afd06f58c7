/**
 * Registry credentials from the user's docker config (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`), as docker/cli's config/configfile GetCredentialsStore chooses them:
 * - `credHelpers[host]`, else `credsStore`: the credential helper `docker-credential-<name>` on
 *   PATH, run as `get` with the server address on stdin (docker/docker-credential-helpers
 *   protocol: JSON `{ServerURL, Username, Secret}` out; Username `<token>` means Secret is an
 *   identity token; "credentials not found" means none);
 * - else the `auths` map: an entry has `auth` = base64("user:password") or `username` +
 *   `password`, or `identitytoken`; keys are `host[:port]` or URLs such as
 *   `https://index.docker.io/v1/` for Docker Hub.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { UsageError } from '../../base/errors.ts';
import { readBoundedFile } from '../../base/safe-fs.ts';

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth2 refresh token (docker login with an identity provider). */
  identityToken?: string;
}

export function dockerConfigPath(): string {
  return path.join(process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker'), 'config.json');
}

/** The host[:port] a key of `auths` names (scheme and path dropped; Docker Hub's aliases folded). */
function keyHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//, '').split('/')[0];
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

export function credentialsFor(registry: string, file = dockerConfigPath()): Credentials | undefined {
  if (!fs.existsSync(file)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readBoundedFile(file, file, 4 << 20).toString('utf8'));
  } catch (e) {
    throw new UsageError(`docker config is not valid JSON (${(e as Error).message})`, { where: file, hint: 'Fix the file, or point DOCKER_CONFIG at a directory with a valid config.json.' });
  }
  const want = registry === 'registry-1.docker.io' ? 'docker.io' : registry;
  const helper = helperFor(doc as ConfigHelpers | null, want, file);
  if (helper) return fromHelper(helper.name, want, helper.where);
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (keyHost(key) !== want || typeof value !== 'object' || value === null) continue;
    const v = value as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
    const where = `${file}: auths["${key}"]`;
    let username = typeof v.username === 'string' ? v.username : '';
    let password = typeof v.password === 'string' ? v.password : '';
    if (typeof v.auth === 'string' && v.auth !== '') {
      const plain = Buffer.from(v.auth, 'base64').toString('utf8');
      const i = plain.indexOf(':');
      if (i < 0) throw new UsageError('the auth value is not base64 of user:password', { where, hint: 'Run docker login again, or write "auth": base64("user:password").' });
      username = plain.slice(0, i);
      password = plain.slice(i + 1);
    }
    const identityToken = typeof v.identitytoken === 'string' && v.identitytoken !== '' ? v.identitytoken : undefined;
    if (username || identityToken) return { username, password, identityToken };
  }
  return undefined;
}

interface ConfigHelpers {
  credsStore?: unknown;
  credHelpers?: unknown;
}

/** The credential helper configured for a registry: `credHelpers[host]` first, then `credsStore`. */
function helperFor(doc: ConfigHelpers | null, registry: string, file: string): { name: string; where: string } | undefined {
  const per = doc?.credHelpers;
  let found: { name: unknown; where: string } | undefined;
  if (typeof per === 'object' && per !== null) {
    const key = Object.keys(per).find((k) => keyHost(k) === registry);
    if (key !== undefined) found = { name: (per as Record<string, unknown>)[key], where: `${file}: credHelpers["${key}"]` };
  }
  if (!found && doc?.credsStore !== undefined && doc.credsStore !== '') found = { name: doc.credsStore, where: `${file}: credsStore` };
  if (!found) return undefined;
  if (typeof found.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(found.name)) {
    throw new UsageError(`${JSON.stringify(found.name)} is not a credential helper name`, { where: found.where, hint: 'Name a helper such as "pass" or "secretservice" (run as docker-credential-<name>), or remove the key.' });
  }
  return { name: found.name, where: found.where };
}

/** The address a helper stores a registry's credentials under (docker/cli: Docker Hub's is its v1 URL). */
function serverAddress(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

const HELPER_TIMEOUT_MS = 30_000;

function fromHelper(name: string, registry: string, where: string): Credentials | undefined {
  const program = `docker-credential-${name}`;
  const r = spawnSync(program, ['get'], { input: serverAddress(registry), encoding: 'utf8', timeout: HELPER_TIMEOUT_MS, maxBuffer: 1 << 20 });
  if (r.error) {
    const why = (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is not on PATH' : `failed (${r.error.message})`;
    throw new UsageError(`credential helper ${program} ${why}`, { where, hint: `Install ${program}, or remove the key to use the auths map.` });
  }
  if (r.status !== 0) {
    if (/credentials not found/i.test(`${r.stdout}${r.stderr}`)) return undefined;
    throw new UsageError(`credential helper ${program} get exited with ${r.status ?? r.signal}: ${`${r.stderr || r.stdout}`.trim().slice(0, 300)}`, { where, hint: `Check ${program} (try: echo ${serverAddress(registry)} | ${program} get).` });
  }
  let out: { Username?: unknown; Secret?: unknown };
  try {
    out = JSON.parse(r.stdout) as typeof out;
  } catch {
    throw new UsageError(`credential helper ${program} did not answer with JSON`, { where, hint: `Check ${program} (try: echo ${serverAddress(registry)} | ${program} get).` });
  }
  const username = typeof out.Username === 'string' ? out.Username : '';
  const secret = typeof out.Secret === 'string' ? out.Secret : '';
  if (username === '<token>') return { username: '', password: '', identityToken: secret };
  return username || secret ? { username, password: secret } : undefined;
}
