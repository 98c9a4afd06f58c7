/**
 * A small Docker Engine API client over any stream factory (here: the host's docker socket forwarded
 * through SSH). Why the API and not the remote docker CLI: the host may have no CLI or one whose
 * version does not match the daemon (client 28 refuses --mac-address against a 20.10 daemon); the API
 * lets us ask the daemon's version and pick the call shape it supports (per-endpoint MacAddress needs
 * API >= 1.44, older daemons take Config.MacAddress).
 */
import http from 'node:http';
import { pipeline, type Duplex, type Readable } from 'node:stream';
import { GridforgeError } from '../base/errors.ts';

export interface DockerResponse {
  status: number;
  body: Buffer;
}

/**
 * A request body: JSON-able data, or bytes to stream. A stream is best given as an opener, called
 * once the connection is up, so nothing is read (or started, e.g. `docker save`) before then.
 */
export type RequestBody = unknown | Readable | (() => Readable);

function isReadable(x: unknown): x is Readable {
  return typeof x === 'object' && x !== null && typeof (x as Readable).pipe === 'function';
}

export class DockerApiError extends GridforgeError {
  constructor(
    readonly status: number,
    message: string,
    where: string,
  ) {
    super(message, { where });
  }
}

/** The newest API version this client knows how to speak. */
export const CLIENT_MAX_API = '1.45';

export function apiAtLeast(v: string, min: string): boolean {
  const [a, b] = v.split('.').map(Number);
  const [c, d] = min.split('.').map(Number);
  return a > c || (a === c && b >= d);
}

/**
 * The bound on one versioned call (create, start, stop with its grace period, network changes,
 * inspect): none takes minutes, and a daemon that accepts and never answers must not hang a
 * deploy or a rollout. Streams (image loads, exec) pass their own.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 300_000;

export class DockerApi {
  apiVersion = '1.41';
  serverVersion = '';
  constructor(
    private readonly connect: () => Promise<Duplex>,
    readonly where: string,
    private readonly callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ) {}

  /** Ask the daemon for its version; later calls use min(daemon, client) API version. */
  async negotiate(): Promise<{ apiVersion: string; serverVersion: string; minApiVersion: string }> {
    const r = await this.raw('GET', '/version', undefined, { timeoutMs: this.callTimeoutMs });
    if (r.status !== 200) throw new DockerApiError(r.status, `docker /version failed: ${r.body.toString()}`, this.where);
    const v = JSON.parse(r.body.toString()) as { ApiVersion: string; Version: string; MinAPIVersion: string };
    this.apiVersion = apiAtLeast(v.ApiVersion, CLIENT_MAX_API) ? CLIENT_MAX_API : v.ApiVersion;
    this.serverVersion = v.Version;
    return { apiVersion: v.ApiVersion, serverVersion: v.Version, minApiVersion: v.MinAPIVersion };
  }

  /**
   * One request on a fresh connection. A stream body is read only once the connection is up: pass
   * an opener (`() => Readable`, called then) or a stream nobody reads yet (no 'data' listener, not
   * piped). Bytes a stream emits before it is piped into the request are lost: the daemon then sees
   * a tar that starts mid-file ("archive/tar: invalid tar header"), which is what a slow SSH channel
   * open used to cause (see stacks/deploy.ts loadImage). The body goes through stream.pipeline, so a
   * failing body fails the request instead of leaving it open, and a failed request closes the body.
   */
  raw(method: string, path: string, body?: RequestBody, opts: { contentType?: string; timeoutMs?: number } = {}): Promise<DockerResponse> {
    return this.connect().then(
      (sock) => this.send(sock, method, path, body, opts),
      (err) => {
        if (isReadable(body)) body.destroy();
        throw err;
      },
    );
  }

  private send(sock: Duplex, method: string, path: string, body: RequestBody, opts: { contentType?: string; timeoutMs?: number }): Promise<DockerResponse> {
    return new Promise((resolve, reject) => {
      const isStream = typeof body === 'function' || isReadable(body);
      const payload = body === undefined || isStream ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string | number> = { Host: 'docker', Connection: 'close' };
      if (payload) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = payload.length;
      } else if (isStream) {
        headers['Content-Type'] = opts.contentType ?? 'application/x-tar';
        headers['Transfer-Encoding'] = 'chunked';
      }
      let settled = false;
      let res: http.IncomingMessage | null = null;
      const chunks: Buffer[] = [];
      const done = () => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        resolve({ status: res?.statusCode ?? 0, body: Buffer.concat(chunks) });
      };
      const fail = (err: Error, force = false) => {
        // A complete answer (e.g. a load error) beats the broken pipe that may follow it: its 'end' comes.
        if (settled || (res?.complete && !force)) return;
        settled = true;
        if (timer) clearTimeout(timer);
        reject(new GridforgeError(`docker API ${method} ${path} failed: ${err.message}`, { where: this.where }));
      };
      const req = http.request({ method, path, headers, createConnection: () => sock as unknown as import('node:net').Socket });
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            const err = new Error(`timed out after ${opts.timeoutMs} ms`);
            fail(err, true);
            req.destroy(err);
          }, opts.timeoutMs)
        : undefined;
      req.on('response', (r: http.IncomingMessage) => {
        res = r;
        r.on('data', (d: Buffer) => chunks.push(d));
        r.on('end', done);
        r.on('error', (err) => fail(err));
        r.on('close', () => fail(new Error('connection closed before the answer ended')));
      });
      req.on('error', (err) => fail(err));
      req.on('close', () => {
        if (!res) fail(new Error('connection closed before an answer'));
      });
      if (!isStream) {
        req.end(payload);
        return;
      }
      let stream: Readable;
      try {
        stream = typeof body === 'function' ? body() : (body as Readable);
      } catch (err) {
        req.destroy(err as Error);
        return;
      }
      pipeline(stream, req, (err) => {
        if (err) fail(err);
      });
    });
  }

  /** Versioned call; JSON result; throws on status >= 400 unless listed in `ok`. */
  async call<T = any>(method: string, path: string, body?: unknown, ok: number[] = []): Promise<{ status: number; data: T }> {
    const r = await this.raw(method, `/v${this.apiVersion}${path}`, body, { timeoutMs: this.callTimeoutMs });
    if (r.status >= 400 && !ok.includes(r.status)) {
      let msg = r.body.toString().trim();
      try {
        msg = JSON.parse(msg).message ?? msg;
      } catch {
        /* plain text */
      }
      throw new DockerApiError(r.status, `docker ${method} ${path.split('?')[0]}: ${msg}`, this.where);
    }
    const text = r.body.toString();
    let data: any = text;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      /* stream or text */
    }
    return { status: r.status, data };
  }

  async inspectContainer(name: string): Promise<any | null> {
    const r = await this.call('GET', `/containers/${encodeURIComponent(name)}/json`, undefined, [404]);
    return r.status === 404 ? null : r.data;
  }

  async inspectImage(ref: string): Promise<any | null> {
    const r = await this.call('GET', `/images/${encodeURIComponent(ref)}/json`, undefined, [404]);
    return r.status === 404 ? null : r.data;
  }

  async inspectNetwork(name: string): Promise<any | null> {
    const r = await this.call('GET', `/networks/${encodeURIComponent(name)}`, undefined, [404]);
    return r.status === 404 ? null : r.data;
  }

  /** Run a command in a container; returns demultiplexed output and the exit code. */
  async exec(container: string, cmd: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string; code: number }> {
    const c = await this.call('POST', `/containers/${encodeURIComponent(container)}/exec`, { AttachStdout: true, AttachStderr: true, Cmd: cmd });
    const id = c.data.Id as string;
    const r = await this.raw('POST', `/v${this.apiVersion}/exec/${id}/start`, { Detach: false, Tty: false }, { timeoutMs });
    if (r.status >= 400) throw new DockerApiError(r.status, `docker exec ${cmd.join(' ')}: ${r.body.toString()}`, this.where);
    const { stdout, stderr } = demux(r.body);
    const i = await this.call('GET', `/exec/${id}/json`);
    return { stdout, stderr, code: i.data.ExitCode ?? -1 };
  }

  /** Follow a JSON-lines progress response (image load / pull); throws on an error line. */
  static progressErrors(body: Buffer): string | null {
    for (const line of body.toString().split('\n')) {
      if (!line.trim()) continue;
      try {
        const o = JSON.parse(line);
        if (o.error) return o.error as string;
      } catch {
        /* ignore */
      }
    }
    return null;
  }
}

/** Split Docker's multiplexed stream (8-byte frame headers) into stdout and stderr. */
export function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const kind = buf[off];
    const size = buf.readUInt32BE(off + 4);
    const chunk = buf.subarray(off + 8, off + 8 + size);
    (kind === 2 ? err : out).push(chunk);
    off += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
