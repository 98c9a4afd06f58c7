/**
 * `repo serve`: the repository over HTTP with the headers a cvmfs client and a squid expect
 * (like the Apache config `cvmfs_server` installs): `.cvmfs*` files expire after 61 s, objects
 * after 3 days (immutable, content-addressed); GET and HEAD; 404 for anything else, including the
 * gridforge state (`.gridforge/`) and `data/txn/`.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface ServeOptions {
  host?: string;
  port?: number;
  log?: (line: string) => void;
}

export interface Server {
  url: string;
  port: number;
  close(): Promise<void>;
}

const TOP_FILES = new Set(['.cvmfspublished', '.cvmfswhitelist', '.cvmfsreflog', '.cvmfs_master_replica']);

export function classify(urlPath: string): { rel: string; kind: 'meta' | 'object' } | undefined {
  let p: string;
  try {
    p = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return undefined;
  }
  p = p.replace(/^\/+/, '');
  if (TOP_FILES.has(p)) return { rel: p, kind: 'meta' };
  if (/^data\/[0-9a-f]{2}\/[0-9a-f]{38}[CHXMP]?$/.test(p)) return { rel: p, kind: 'object' };
  return undefined;
}

export function serveRepository(repoDir: string, opts: ServeOptions = {}): Promise<Server> {
  const dir = path.resolve(repoDir);
  const server = http.createServer((req, res) => {
    const c = req.method === 'GET' || req.method === 'HEAD' ? classify(req.url ?? '/') : undefined;
    const done = (status: number) => opts.log?.(`${req.method} ${req.url} ${status}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return done(405);
    }
    if (!c) {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'max-age=61' }).end('not found\n');
      return done(404);
    }
    const file = path.join(dir, c.rel);
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        res.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'max-age=61' }).end('not found\n');
        return done(404);
      }
      const maxAge = c.kind === 'meta' ? 61 : 259200;
      const type = c.kind === 'meta' ? 'application/x-cvmfs' : 'application/octet-stream';
      res.writeHead(200, {
        'Content-Type': type,
        'Content-Length': st.size,
        'Cache-Control': `public, max-age=${maxAge}`,
        Expires: new Date(Date.now() + maxAge * 1000).toUTCString(),
        'Last-Modified': st.mtime.toUTCString(),
      });
      done(200);
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${host}:${a.port}`,
        port: a.port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
