/**
 * HTTP(S) to a registry: one request with a deadline, retries with exponential backoff, and the
 * scheme per registry. Settings come from the environment (the CLI and library share them):
 *
 * - `GRIDFORGE_REGISTRY_CA`: a PEM file of extra CA certificates to trust (a self-signed registry);
 * - `GRIDFORGE_INSECURE_REGISTRIES`: comma-separated host:port allowed to answer plain HTTP when
 *   their HTTPS handshake fails (as dockerd's insecure-registries; loopback registries always are,
 *   as dockerd treats 127.0.0.0/8);
 * - `GRIDFORGE_REGISTRY_TIMEOUT`: seconds without a byte from the registry before a request fails
 *   (default 30), so a registry that accepts and never answers gives an error naming it;
 * - `GRIDFORGE_REGISTRY_RETRIES`: attempts per request on network errors, 429 and 5xx (default 3;
 *   backoff 0.5 s, 1 s, 2 s, ... or the server's Retry-After up to 10 s).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { GridforgeError, UsageError } from '../../base/errors.ts';

export const CA_ENV = 'GRIDFORGE_REGISTRY_CA';
export const INSECURE_ENV = 'GRIDFORGE_INSECURE_REGISTRIES';
export const TIMEOUT_ENV = 'GRIDFORGE_REGISTRY_TIMEOUT';
export const RETRIES_ENV = 'GRIDFORGE_REGISTRY_RETRIES';

export interface TransportOptions {
  ca?: Buffer;
  /** Keep-alive agents (idle sockets do not hold the process open: Agent.keepSocketAlive unrefs them). */
  agents?: { http: http.Agent; https: https.Agent };
  insecure: Set<string>;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

function positive(env: string, dflt: number, integer: boolean): number {
  const v = process.env[env];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${env}=${JSON.stringify(v)} is not a positive ${integer ? 'integer' : 'number'}`, { where: env, hint: `Unset it or give e.g. ${dflt}.` });
  }
  return n;
}

export function transportFromEnv(): TransportOptions {
  let ca: Buffer | undefined;
  const caFile = process.env[CA_ENV];
  if (caFile) {
    try {
      ca = fs.readFileSync(caFile);
    } catch (e) {
      throw new UsageError(`cannot read the registry CA file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { where: `${CA_ENV}=${caFile}`, hint: 'Point it at a PEM file with the registry certificate or its CA.' });
    }
  }
  const insecure = new Set((process.env[INSECURE_ENV] ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  return {
    ca, insecure, timeoutMs: positive(TIMEOUT_ENV, 30, false) * 1000, attempts: positive(RETRIES_ENV, 3, true), backoffMs: 500,
    agents: { http: new http.Agent({ keepAlive: true, maxSockets: 8 }), https: new https.Agent({ keepAlive: true, maxSockets: 8, ca: ca ? [...tls.rootCertificates, ca.toString()] : undefined }) },
  };
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

export interface RequestInit {
  method: string;
  headers?: Record<string, string>;
  /** Request body: a buffer, or a factory of a fresh stream per attempt. */
  body?: Buffer | (() => Readable);
  bodyLength?: number;
}

/** A network-level failure (no HTTP status): worth a retry. */
export class NetworkError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

/** One request; the socket may stay idle at most `timeoutMs` (also while the body streams). */
export function requestOnce(t: TransportOptions, url: URL, init: RequestInit): Promise<Response> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { 'User-Agent': 'gridforge', ...init.headers };
    if (init.bodyLength !== undefined) headers['Content-Length'] = String(init.bodyLength);
    else if (Buffer.isBuffer(init.body)) headers['Content-Length'] = String(init.body.length);
    const agent = t.agents ? (url.protocol === 'https:' ? t.agents.https : t.agents.http) : false;
    const req = mod.request(url, { method: init.method, headers, ca: url.protocol === 'https:' && t.ca ? [...tls.rootCertificates, t.ca.toString()] : undefined, agent });
    let settled = false;
    req.setTimeout(t.timeoutMs, () => {
      req.destroy(new NetworkError(`no answer within ${t.timeoutMs / 1000} s`, 'ETIMEDOUT'));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      reject(e instanceof NetworkError ? e : new NetworkError(e.message, e.code));
    });
    req.on('response', (res) => {
      settled = true;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    if (Buffer.isBuffer(init.body)) req.end(init.body);
    else if (init.body) {
      const s = init.body();
      s.on('error', (e) => req.destroy(e));
      s.pipe(req);
    } else req.end();
  });
}

/** Read a response body whole, at most `max` bytes (a larger one is an error naming `where`). */
export async function readBody(res: Response, max: number, where: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > max) {
        res.body.destroy();
        throw new GridforgeError(`the registry sent more than ${max} bytes`, { where, hint: 'The registry or a proxy in front of it misbehaves; documents this large are refused.' });
      }
      chunks.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof GridforgeError) throw e;
    throw new NetworkError((e as Error).message, (e as NodeJS.ErrnoException).code);
  }
  return Buffer.concat(chunks);
}

/** Drain and drop a body we do not need (keeps no socket busy). */
export function discard(res: Response): void {
  res.body.resume();
  res.body.on('error', () => undefined);
}

export const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Delay before attempt `n + 1` (n >= 1): Retry-After when the server says so (at most 10 s), else backoff * 2^(n-1). */
export function backoff(t: TransportOptions, n: number, res?: Response): number {
  const ra = Number(res?.headers['retry-after']);
  if (Number.isFinite(ra) && ra >= 0) return Math.min(ra * 1000, 10_000);
  return t.backoffMs * 2 ** (n - 1);
}

/**
 * `fn` until it returns a response whose status is not retryable, or `attempts` are used; a
 * NetworkError on the last attempt becomes a GridforgeError naming the registry and what failed.
 */
export async function withRetries(t: TransportOptions, what: string, registry: string, fn: () => Promise<Response>): Promise<Response> {
  for (let n = 1; ; n++) {
    let res: Response | undefined;
    try {
      res = await fn();
      if (!RETRY_STATUS.has(res.status) || n >= t.attempts) return res;
      discard(res);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      if (n >= t.attempts) {
        throw new GridforgeError(`registry ${registry} failed: ${what}: ${e.message}${e.code && !e.message.includes(e.code) ? ` (${e.code})` : ''} (after ${n} attempt${n > 1 ? 's' : ''})`, {
          where: registry,
          hint: e.code === 'ETIMEDOUT' ? `The registry accepted the connection but did not answer; check it, or raise ${TIMEOUT_ENV} (seconds).` : `Check that ${registry} is reachable (and, for a self-signed certificate, ${CA_ENV}).`,
        });
      }
    }
    await sleep(backoff(t, n, res));
  }
}
