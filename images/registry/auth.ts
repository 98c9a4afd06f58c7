/**
 * Authentication by the registry's challenge (distribution docs, "Token Authentication
 * Specification" and RFC 7235): a 401 carries `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
 * (a token is fetched from the realm, with basic credentials when the docker config has them,
 * by the OAuth2 refresh-token grant when it has an identity token (distribution docs, "OAuth2
 * Token Authentication": POST grant_type=refresh_token), anonymously otherwise) or
 * `Basic realm=...` (the credentials go on every request).
 */
import { UsageError } from '../../base/errors.ts';
import type { Credentials } from './credentials.ts';
import { readBody, requestOnce, withRetries, type TransportOptions } from './transport.ts';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** The first challenge of a WWW-Authenticate header (auth-params, quoted strings unescaped). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z][A-Za-z0-9._~+/-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/gy;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2])) !== null && p[0] !== '') params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** A bearer token for `scope` from the challenge's realm. */
export async function fetchToken(t: TransportOptions, registry: string, ch: Challenge, scope: string, creds: Credentials | undefined): Promise<string> {
  const realm = ch.params.realm;
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new UsageError(`registry ${registry} names a token realm that is not a URL: ${JSON.stringify(realm)}`, { where: registry, hint: 'The registry is misconfigured (auth.token.realm).' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`token realm ${realm} is not http(s)`, { where: registry, hint: 'The registry is misconfigured (auth.token.realm).' });
  if (ch.params.service) url.searchParams.set('service', ch.params.service);
  for (const s of new Set([scope, ...(ch.params.scope ? ch.params.scope.split(' ') : [])])) if (s) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { Accept: 'application/json' };
  let res;
  if (creds?.identityToken) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: 'gridforge', refresh_token: creds.identityToken });
    for (const [k, v] of url.searchParams) form.append(k, v);
    const body = Buffer.from(form.toString());
    const post = new URL(url.origin + url.pathname);
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    res = await withRetries(t, `POST token ${post.href}`, registry, () => requestOnce(t, post, { method: 'POST', headers, body }));
  } else {
    if (creds) headers.Authorization = basicHeader(creds);
    res = await withRetries(t, `GET token ${url.origin}${url.pathname}`, registry, () => requestOnce(t, url, { method: 'GET', headers }));
  }
  const body = await readBody(res, 1 << 20, url.href);
  if (res.status === 401 || res.status === 403) {
    throw new UsageError(`registry ${registry}: the token service refused ${creds ? (creds.identityToken ? 'the identity token of the docker config' : `the credentials of ${creds.username}`) : 'anonymous access'} for ${scope} (HTTP ${res.status})`, {
      where: registry,
      hint: creds ? 'Check the credentials in the docker config (docker login).' : `Add credentials for ${registry} to the docker config (docker login ${registry}).`,
    });
  }
  if (res.status !== 200) throw new UsageError(`registry ${registry}: token service answered HTTP ${res.status}`, { where: url.href, hint: 'Check the registry and its token service.' });
  let doc: { token?: unknown; access_token?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new UsageError(`registry ${registry}: the token service did not answer JSON`, { where: url.href, hint: 'Check the registry and its token service.' });
  }
  const token = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
  if (!token) throw new UsageError(`registry ${registry}: the token service answered no token`, { where: url.href, hint: 'Check the registry and its token service.' });
  return token;
}
