/** Where a reader gets repository files from: a local directory or an HTTP(S) base URL. */
import fs from 'node:fs';
import path from 'node:path';

export interface RepoSource {
  readonly location: string;
  /** relative path like `.cvmfspublished` or `data/ab/cd...C`; throws NotFound (code ENOENT) when absent */
  get(rel: string): Promise<Buffer>;
}

export class LocalSource implements RepoSource {
  constructor(readonly location: string) {}
  async get(rel: string): Promise<Buffer> {
    return fs.promises.readFile(path.join(this.location, rel));
  }
}

export class HttpSource implements RepoSource {
  constructor(readonly location: string) {}
  async get(rel: string): Promise<Buffer> {
    const url = `${this.location.replace(/\/+$/, '')}/${rel}`;
    const res = await fetch(url);
    if (res.status === 404) throw Object.assign(new Error(`${url}: 404 Not Found`), { code: 'ENOENT' });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }
}

export function sourceFor(dirOrUrl: string): RepoSource {
  return /^https?:\/\//.test(dirOrUrl) ? new HttpSource(dirOrUrl) : new LocalSource(path.resolve(dirOrUrl));
}
