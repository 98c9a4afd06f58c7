/**
 * `gridforge probe serve`: the HTTP endpoint nodes upload their results to, writing the results
 * store (probes/store.ts). Routes:
 *   POST /results                 one node's results as `probe run` prints them (JSON, at most
 *                                 MAX_UPLOAD_BYTES) -> 201 {"stored": <rows>}
 *   GET|POST /uploadResults.jsp   Site Sonar's upload (hostname, ce_name, test_name, test_message as
 *                                 query or form parameters; JAliEn alien/site/JobAgent.java uploadResults)
 *   GET /health                   {"results": <rows>, "nodes": <hosts>}
 * A malformed or oversized upload gets 400 / 413 with the reason as {"error": ...} and nothing is
 * stored; a 201 is sent only after the transaction holding the upload committed (GroupCommit).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { MAX_UPLOAD_BYTES, parseProbeOutput, parseUpload, UPLOAD_SCHEMA, validateUpload, type Upload } from './result.ts';
import { openResultsStore, type ResultsStore } from './store.ts';

export interface ServeResultsOptions {
  host?: string;
  port?: number;
  maxBytes?: number;
  log?: (line: string) => void;
}

export interface ResultsServer {
  url: string;
  port: number;
  store: ResultsStore;
  close(): Promise<void>;
}

class HttpError extends Error {
  /** Close the connection after the answer (a client still sending more than we read). */
  cut?: boolean;
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** An oversized body is read and dropped up to this many times the limit (so the client sees the 413), then the connection is cut. */
const DRAIN_FACTOR = 16;

/**
 * The request body, refusing more than `max` bytes (declared or sent): the rest is read and dropped
 * so that the client gets the 413 instead of a reset connection, up to DRAIN_FACTOR x max.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  return new Promise((resolve, reject) => {
    let size = 0;
    const tooBig = () => new HttpError(413, `upload of ${Number.isFinite(declared) ? declared : size} bytes is larger than ${max}; send one node per upload`);
    if (declared > DRAIN_FACTOR * max) return reject(Object.assign(tooBig(), { cut: true }));
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= max) chunks.push(b);
      else if (size > DRAIN_FACTOR * max) {
        req.removeAllListeners('data');
        reject(Object.assign(tooBig(), { cut: true }));
      }
    });
    req.on('end', () => (size > max || declared > max ? reject(tooBig()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** Site Sonar's one-probe upload as a gridforge upload. */
function siteSonarUpload(params: URLSearchParams): Upload {
  const need = (k: string) => {
    const v = params.get(k);
    if (v === null || v === '') throw new UsageError(`bad upload: parameter ${k} is missing`, { where: k });
    return v;
  };
  const message = parseProbeOutput(need('test_message'));
  if (!message.ok) throw new UsageError(`bad upload: test_message: ${message.error}`, { where: 'test_message' });
  const ce = need('ce_name');
  const site = params.get('site') || ce;
  return validateUpload({ schema: UPLOAD_SCHEMA, hostname: need('hostname'), site, ce, probes: { [need('test_name')]: message.value } });
}

/**
 * Group commit: the uploads that arrive while the event loop is busy are written in one transaction
 * on the next turn, and each is answered only after that transaction committed (a failed commit
 * fails every upload in it, none is half kept). One commit per upload was most of an upload's cost.
 */
class GroupCommit {
  private queue: { up: Upload; resolve: (n: number) => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly store: ResultsStore) {}

  add(up: Upload): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.queue.push({ up, resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    let counts: number[];
    try {
      counts = this.store.insertUploads(batch.map((b) => b.up));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => b.resolve(counts[i]));
  }
}

async function handle(store: ResultsStore, commits: GroupCommit, maxBytes: number, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/health' && req.method === 'GET') return send(res, 200, { results: store.count(), nodes: store.nodeCount() });
  let upload: Upload;
  if (url.pathname === '/results') {
    if (req.method !== 'POST') throw new HttpError(405, 'POST one node\'s results (JSON) to /results');
    upload = parseUpload(await readBody(req, maxBytes));
  } else if (url.pathname === '/uploadResults.jsp') {
    if (req.method === 'POST') {
      const body = await readBody(req, maxBytes);
      for (const [k, v] of new URLSearchParams(body.toString('utf8'))) url.searchParams.set(k, v);
    } else if (req.method !== 'GET') throw new HttpError(405, 'GET or POST /uploadResults.jsp');
    if (url.search.length > maxBytes) throw new HttpError(413, `upload larger than ${maxBytes} bytes`);
    upload = siteSonarUpload(url.searchParams);
  } else throw new HttpError(404, `no such endpoint ${url.pathname}; POST /results`);
  const stored = await commits.add(upload);
  send(res, 201, { stored, hostname: upload.hostname });
}

/** Start the endpoint; it writes `resultsFile` (created when missing). */
export async function serveResults(resultsFile: string, opts: ServeResultsOptions = {}): Promise<ResultsServer> {
  const store = openResultsStore(resultsFile);
  const maxBytes = opts.maxBytes ?? MAX_UPLOAD_BYTES;
  const commits = new GroupCommit(store);
  const server = http.createServer((req, res) => {
    handle(store, commits, maxBytes, req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : err instanceof UsageError ? 400 : 500;
      const message = err instanceof Error ? err.message : String(err);
      opts.log?.(`${req.method} ${req.url?.slice(0, 80)}: ${status} ${message}`);
      if (status === 413) res.setHeader('connection', 'close');
      if (err instanceof HttpError && err.cut) res.on('finish', () => req.socket.destroy());
      if (!res.headersSent) send(res, status, { error: message });
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new GridforgeError(`cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 8480}: ${err.message}`, { hint: 'choose another --port or stop what holds it' })));
    server.listen(opts.port ?? 8480, opts.host ?? '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          store.close();
          resolve();
        });
      }),
  };
}
