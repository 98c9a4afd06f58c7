// `probe serve` under load and under bad input: 10,000 posted uploads (one in ten malformed in a
// different way each time) are all answered; every valid one is kept (checked by count and by
// content, row by row) and no malformed one is; oversized bodies are refused before being read
// whole; Site Sonar's own upload (uploadResults.jsp) is collected too.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openResultsStore, serveResults, type ResultsServer } from '../../probes/index.ts';
import { tempDir } from './helpers.ts';

const work = tempDir();
let server: ResultsServer;
beforeAll(async () => {
  server = await serveResults(path.join(work, 'results.db'), { port: 0 });
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function upload(i: number): Record<string, unknown> {
  return {
    schema: 'gridforge-sitesonar/1',
    hostname: `wn${String(i).padStart(5, '0')}.site${i % 7}.example.org`,
    site: `SITE${i % 7}`,
    ce: `SITE${i % 7}-CE${i % 2}`,
    time: new Date(1_700_000_000_000 + i).toISOString(),
    probes: {
      os: { id: 'almalinux', version_id: '9.4', seq: i, EXITCODE: 0, EXECUTION_TIME: 120 },
      cpu: { arch: 'x86_64', x86_64_level: (i % 4) + 1, model: `CPU "${i}" \\ ü`, EXITCODE: 0, EXECUTION_TIME: 80 },
      userns: { enabled: i % 3 !== 0, nested: { deep: { list: [1, 'two', null] } }, EXITCODE: 0, EXECUTION_TIME: 33.5 },
    },
  };
}

/** A malformed upload (kind by i), and what the endpoint must say. */
function malformed(i: number): { body: string; status: number; reason: RegExp } {
  const u = upload(i) as any;
  switch ((i / 10) % 9) {
    case 0: return { body: '{"schema": "gridforge-sitesonar/1", "hostname": ', status: 400, reason: /not JSON/ };
    case 1: delete u.hostname; return { body: JSON.stringify(u), status: 400, reason: /hostname/ };
    case 2: u.hostname = 'bad host/../name'; return { body: JSON.stringify(u), status: 400, reason: /hostname: a host name/ };
    case 3: u.probes = { 'Bad Name!': u.probes.os }; return { body: JSON.stringify(u), status: 400, reason: /probe name/ };
    case 4: u.probes.os.EXITCODE = 'zero'; return { body: JSON.stringify(u), status: 400, reason: /probes\.os\.EXITCODE/ };
    case 5: u.schema = 'something-else'; return { body: JSON.stringify(u), status: 400, reason: /schema/ };
    case 6: u.probes.os.x = JSON.parse('['.repeat(20) + ']'.repeat(20)); return { body: JSON.stringify(u), status: 400, reason: /deeper than 8/ };
    case 7: u.probes = {}; return { body: JSON.stringify(u), status: 400, reason: /0 probes/ };
    default: u.extra = 'field'; return { body: JSON.stringify(u), status: 400, reason: /extra|Unrecognized/ };
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
afterAll(() => agent.destroy());

/** POST a body (a plain keep-alive client: several times the throughput of fetch in this process). */
function post(body: string, pathname = '/results'): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${pathname}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('probe serve', () => {
  it('keeps every valid result of 10,000 posted uploads and rejects the malformed ones with the reason', async () => {
    const N = 10_000;
    const valid: number[] = [];
    let next = 0;
    const failures: string[] = [];
    const worker = async () => {
      for (let i = next++; i < N; i = next++) {
        if (i % 10 === 0) {
          const m = malformed(i);
          const r = await post(m.body);
          if (r.status !== m.status || !m.reason.test(r.json.error)) failures.push(`${i}: ${r.status} ${JSON.stringify(r.json)} (expected ${m.status} ${m.reason})`);
        } else {
          const r = await post(JSON.stringify(upload(i)));
          if (r.status !== 201 || r.json.stored !== 3) failures.push(`${i}: ${r.status} ${JSON.stringify(r.json)}`);
          else valid.push(i);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(failures.slice(0, 5)).toEqual([]);
    expect(valid.length).toBe(9_000);

    const store = openResultsStore(server.store.file, { readonly: true });
    try {
      expect(store.count()).toBe(9_000 * 3);
      expect(store.nodeCount()).toBe(9_000);
      const seen = new Map<string, number>();
      for (const row of store.all()) {
        const i = Number(/^wn(\d+)\./.exec(row.hostname)![1]);
        const sent = upload(i) as any;
        expect(i % 10).not.toBe(0);
        expect(row.site).toBe(sent.site);
        expect(row.ce).toBe(sent.ce);
        expect(JSON.parse(row.doc)).toEqual(sent.probes[row.probe]);
        seen.set(row.hostname, (seen.get(row.hostname) ?? 0) + 1);
      }
      expect(seen.size).toBe(9_000);
      expect([...seen.values()].every((n) => n === 3)).toBe(true);
    } finally {
      store.close();
    }
  }, 120_000);

  it('refuses an oversized upload (declared or streamed) and stores nothing', async () => {
    const before = server.store.count();
    const big = upload(1) as any;
    big.probes.os.blob = 'x'.repeat(300 * 1024);
    const r = await post(JSON.stringify(big));
    expect(r.status).toBe(413);
    expect(r.json.error).toMatch(/larger than 262144/);
    // streamed without a length (chunked): refused once it passes the limit
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${server.url}/results`);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let i = 0; i < 40; i++) req.write('x'.repeat(10_000));
      req.end();
    });
    expect(status).toBe(413);
    // one probe result above its own limit inside a small enough body
    big.probes.os.blob = 'x'.repeat(70 * 1024);
    const one = await post(JSON.stringify(big));
    expect(one.status).toBe(400);
    expect(one.json.error).toMatch(/probes\.os: \d+ bytes, more than 65536/);
    expect(server.store.count()).toBe(before);
  });

  it('collects Site Sonar uploads (uploadResults.jsp) and answers wrong routes and methods', async () => {
    const before = server.store.count();
    const q = new URLSearchParams({ hostname: 'wn-jsp.example.org', ce_name: 'CERN', test_name: 'os', test_message: JSON.stringify({ id: 'centos', EXITCODE: 0, EXECUTION_TIME: 12 }) });
    const ok = await fetch(`${server.url}/uploadResults.jsp?${q}`);
    expect(ok.status).toBe(201);
    const bad = new URLSearchParams({ hostname: 'wn-jsp.example.org', ce_name: 'CERN', test_name: 'os', test_message: 'oops' });
    const r = await fetch(`${server.url}/uploadResults.jsp?${bad}`);
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/test_message: output is not one JSON object/);
    expect((await fetch(`${server.url}/results`)).status).toBe(405);
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health.results).toBe(before + 1);
    const row = [...server.store.latest()].find((x) => x.hostname === 'wn-jsp.example.org')!;
    expect(row).toMatchObject({ site: 'CERN', ce: 'CERN', probe: 'os' });
  });
});
