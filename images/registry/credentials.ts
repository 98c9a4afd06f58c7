/**
 * Registry credentials from the user's docker config (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`), its `auths` map only (docker/cli config/configfile: an entry has
 * `auth` = base64("user:password") or `username` + `password`, or `identitytoken`; keys are
 * `host[:port]` or URLs such as `https://index.docker.io/v1/` for Docker Hub). Credential helpers
 * (`credsStore`, `credHelpers`) are not run.
 */
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
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  const want = registry === 'registry-1.docker.io' ? 'docker.io' : registry;
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
