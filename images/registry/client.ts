/**
 * One registry, one repository: the OCI distribution API over transport.ts with auth.ts. The
 * scheme is settled by the first request to `/v2/` (HTTPS; plain HTTP only for loopback and
 * GRIDFORGE_INSECURE_REGISTRIES registries whose TLS handshake fails); a 401 is answered once
 * per request with the challenge it carries; redirects (blob storage) are followed without the
 * registry's Authorization header when they leave the registry.
 */
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { basicHeader, fetchToken, parseChallenge } from './auth.ts';
import { credentialsFor, dockerConfigPath, type Credentials } from './credentials.ts';
import type { RegistryRef } from './reference.ts';
import { discard, NetworkError, requestOnce, transportFromEnv, withRetries, type RequestInit, type Response, type TransportOptions } from './transport.ts';

const TLS_PROTOCOL_ERRORS = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export class RegistryClient {
  readonly t: TransportOptions;
  private base?: string;
  private authorization?: string;
  private creds?: Credentials | null;

  constructor(readonly ref: Pick<RegistryRef, 'registry' | 'endpoint' | 'repository'>, readonly actions: 'pull' | 'pull,push' = 'pull', t?: TransportOptions) {
    this.t = t ?? transportFromEnv();
  }

  get scope(): string {
    return `repository:${this.ref.repository}:${this.actions}`;
  }

  private credentials(): Credentials | undefined {
    if (this.creds === undefined) this.creds = credentialsFor(this.ref.registry) ?? null;
    return this.creds ?? undefined;
  }

  private probing?: Promise<string>;

  /** https://host or, for an insecure registry answering plain HTTP, http://host (probed once, also under concurrent requests). */
  private origin(): Promise<string> {
    this.probing ??= this.probe();
    return this.probing;
  }

  private async probe(): Promise<string> {
    if (this.base) return this.base;
    const host = this.ref.endpoint;
    const url = (scheme: string) => new URL(`${scheme}://${host}/v2/`);
    let scheme = 'https';
    let first: Response | undefined;
    let failed: NetworkError | undefined;
    try {
      first = await requestOnce(this.t, url('https'), { method: 'GET' });
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      const tlsFailed = TLS_PROTOCOL_ERRORS.has(e.code ?? '') || /wrong version number|packet length too long/i.test(e.message);
      if (tlsFailed && (isLoopback(host) || this.t.insecure.has(host))) scheme = 'http';
      else failed = e; // counts as the first attempt below
    }
    // the first answer, else the probe with retries (a network error then names the registry)
    const res = first ?? await withRetries(this.t, `GET ${scheme}://${host}/v2/`, this.ref.registry, () => {
      if (!failed) return requestOnce(this.t, url(scheme), { method: 'GET' });
      const e = failed;
      failed = undefined;
      return Promise.reject(e);
    });
    discard(res);
    this.base = `${scheme}://${host}`;
    return this.base;
  }

  /** Authenticate by the challenge of a 401 (bearer token for this scope, or basic). */
  private async answer(res: Response): Promise<boolean> {
    const ch = parseChallenge(res.headers['www-authenticate'] as string | undefined);
    if (!ch) return false;
    const creds = this.credentials();
    if (ch.scheme === 'bearer') {
      this.authorization = `Bearer ${await fetchToken(this.t, this.ref.registry, ch, this.scope, creds)}`;
      return true;
    }
    if (ch.scheme === 'basic' && creds && !creds.identityToken) {
      const h = basicHeader(creds);
      if (this.authorization === h) return false; // already refused
      this.authorization = h;
      return true;
    }
    return false;
  }

  /**
   * A 401 right after a fresh bearer token: the registry refused the token itself (RFC 6750
   * `error="invalid_token"`: expired, not yet valid, or signed by a key it does not trust).
   */
  private tokenRefused(res: Response, what: string): void {
    const ch = parseChallenge(res.headers['www-authenticate'] as string | undefined);
    if (ch?.scheme !== 'bearer' || ch.params.error !== 'invalid_token' || !this.authorization?.startsWith('Bearer ')) return;
    throw new UsageError(`registry ${this.ref.registry} refused the token its token service issued for ${what}, as expired or not valid${ch.params.error_description ? ` (${ch.params.error_description})` : ''}`, {
      where: `${this.ref.registry}/${this.ref.repository}`,
      hint: `Check the clocks of this host, the registry and the token service at ${ch.params.realm ?? 'its realm'} (tokens carry their expiry), and that the registry trusts the token service's certificate.`,
    });
  }

  private unauthorized(what: string, status: number): never {
    const creds = this.credentials();
    throw new UsageError(`registry ${this.ref.registry} refused ${what} (HTTP ${status}) ${creds ? `with the credentials of ${creds.username}` : 'without credentials'}`, {
      where: `${this.ref.registry}/${this.ref.repository}`,
      hint: creds ? `Check the credentials for ${this.ref.registry} in ${dockerConfigPath()} (docker login ${this.ref.registry}) and their rights on ${this.ref.repository}.` : `Add credentials for ${this.ref.registry} to ${dockerConfigPath()} (docker login ${this.ref.registry}).`,
    });
  }

  /**
   * A request to `pathOrUrl` (a path below the registry, or an absolute URL such as an upload
   * location), authenticated, retried, redirects followed. The caller reads or discards the body.
   */
  async request(pathOrUrl: string, init: RequestInit, what: string): Promise<Response> {
    const origin = await this.origin();
    let url = new URL(pathOrUrl, origin);
    let authed = false;
    for (let hops = 0; ; ) {
      const sameHost = url.origin === origin;
      const headers = { ...init.headers, ...(sameHost && this.authorization ? { Authorization: this.authorization } : {}) };
      const res = await withRetries(this.t, `${init.method} ${url.pathname}`, this.ref.registry, () => requestOnce(this.t, url, { ...init, headers }));
      if (res.status === 401 && sameHost && !authed) {
        discard(res);
        authed = true;
        if (await this.answer(res)) continue;
        this.unauthorized(what, 401);
      }
      if (res.status === 401 || res.status === 403) {
        discard(res);
        if (res.status === 401 && authed) this.tokenRefused(res, what);
        this.unauthorized(what, res.status);
      }
      if ([301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
        discard(res);
        if (++hops > 5) throw new GridforgeError(`registry ${this.ref.registry}: more than 5 redirects for ${what}`, { where: url.href, hint: 'The registry or its storage is misconfigured.' });
        url = new URL(res.headers.location, url);
        if (init.method === 'GET' || init.method === 'HEAD') continue;
        throw new GridforgeError(`registry ${this.ref.registry} redirected ${init.method} ${what}`, { where: url.href, hint: 'Uploads are not redirected by distribution registries; check the registry.' });
      }
      return res;
    }
  }

  /** `/v2/<repository>/<kind>/<reference>` */
  path(kind: 'manifests' | 'blobs', reference: string): string {
    return `/v2/${this.ref.repository}/${kind}/${reference}`;
  }
}
