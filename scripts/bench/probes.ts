/**
 * Benchmark: the Site Sonar probes and their collection (probes/).
 *  1. every probe on this node (`runProbes`, a few at a time), against the JobAgent's way (one after
 *     another) and the CLI's whole `gridforge probe run`; target <= 10 s;
 *  2. `gridforge probe report` over 100,000 stored results (11,112 nodes x 9 probes, the documents of
 *     a real run of this node varied per node), wall time and peak RSS of the process, against
 *     reading the same rows with the sqlite3 CLI; target <= 5 s and <= 300 MB; `migrate check`
 *     over the same store;
 *  3. `gridforge probe serve` (its own process) taking uploads of a real node document (9 probes)
 *     from 32 keep-alive connections, against a bare Node HTTP server that only reads the body;
 *     target >= 500 uploads/s.
 * Run: node --import tsx scripts/bench/probes.ts [--runs 3] [--results 100000] [--uploads 5000] [--keep]
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRepository, publishTree, link } from '../../cvmfs-publish/index.ts';
import { bundledProbesDir, openResultsStore, runProbes, type Upload } from '../../probes/index.ts';
import { makeImage, OS_RELEASE } from '../../test/probes/helpers.ts';
import { formatTable } from '../lib/output.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'scripts/bin/gridforge.mjs');
const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const runs = Math.max(1, opt('--runs', 3));
const RESULTS = opt('--results', 100_000);
const UPLOADS = opt('--uploads', 5_000);
const keep = args.includes('--keep');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gridforge-bench-probes-'));
const ENV = { ...process.env, GRIDFORGE_QUIET: '1' };
/** Preload that prints the process's peak RSS (kB) on exit: the CLI runs in the same process. */
const RSS_PRELOAD = path.join(work, 'maxrss.mjs');
fs.writeFileSync(RSS_PRELOAD, "process.on('exit', () => process.stderr.write(`\\nmaxrss_kb ${process.resourceUsage().maxRSS}\\n`));\n");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: (string | number)[][] = [];
const row = (what: string, xs: number[], unit: string, extra: string, target: string) => rows.push([what, median(xs).toFixed(unit === 'uploads/s' ? 0 : 2), unit, xs.map((x) => x.toFixed(unit === 'uploads/s' ? 0 : 2)).join(' / '), extra, target]);

/** Run the CLI; wall seconds and peak RSS in MB. */
function cli(argv: string[]): { s: number; mb: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', RSS_PRELOAD, CLI, ...argv], { env: ENV, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`gridforge ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { s, mb: Number(/maxrss_kb (\d+)/.exec(r.stderr)![1]) / 1024, stdout: r.stdout };
}

async function benchRun(image: string, cvmfs: string): Promise<Upload> {
  const o = { probesDir: bundledProbesDir(), image, cvmfsRoot: cvmfs, cvmfsRepos: ['alice.example.org'], networkHost: '127.0.0.1', networkPort: 1, site: 'BENCH', hostname: 'wn-bench' };
  let last!: Upload;
  const par: number[] = [], seq: number[] = [], whole: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    last = await runProbes(o);
    par.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    await runProbes({ ...o, concurrency: 1 });
    seq.push((performance.now() - t0) / 1000);
    whole.push(cli(['probe', 'run', '--image', image, '--network-host', '127.0.0.1', '--network-port', '1', '--site', 'BENCH']).s);
  }
  const failed = Object.entries(last.probes).filter(([, r]) => r.EXITCODE !== 0).map(([n]) => n);
  row('all 9 probes, one node (runProbes, 4 at a time)', par, 's', failed.length ? `failed: ${failed.join(',')}` : 'all exit 0', '<= 10 s');
  row('  baseline: one after another (the JobAgent)', seq, 's', `x${(median(seq) / median(par)).toFixed(2)} of the above`, '');
  row('  `gridforge probe run` (process, start included)', whole, 's', '', '<= 10 s');
  return last;
}

/** A node's document, varied: site, CE, CPU level, user namespaces, cvmfs. */
function variant(base: Upload, i: number): Upload {
  const site = `SITE${String(i % 60).padStart(2, '0')}`;
  const p = structuredClone(base.probes) as Record<string, Record<string, unknown>>;
  p.cpu.x86_64_level = [1, 2, 3, 3, 4][i % 5];
  p.userns.enabled = i % 11 !== 0;
  p.cvmfs.mounted = i % 17 === 0 ? [] : ['alice.example.org'];
  p.os.name = ['CentOS Linux 7 (Core)', 'AlmaLinux 9.4 (Seafoam Ocelot)', 'Ubuntu 24.04.1 LTS'][i % 3];
  return { ...base, hostname: `wn${i}.${site.toLowerCase()}.example.org`, site, ce: `${site}-CE${i % 3}`, probes: p as Upload['probes'] };
}

function benchReport(base: Upload, repo: string): void {
  const db = path.join(work, 'report.db');
  const store = openResultsStore(db);
  const perNode = Object.keys(base.probes).length;
  const nodes = Math.ceil(RESULTS / perNode);
  const t0 = performance.now();
  store.db.transaction(() => {
    for (let i = 0; i < nodes; i++) store.insertUpload(variant(base, i), 1_700_000_000_000 + i);
  })();
  const filled = (performance.now() - t0) / 1000;
  const count = store.count();
  store.close();
  console.error(`store: ${count} results of ${nodes} nodes written in ${filled.toFixed(1)} s (${(fs.statSync(db).size / 1e6).toFixed(0)} MB)`);
  const rep: number[] = [], mb: number[] = [], html: number[] = [], base3: number[] = [], mig: number[] = [], migMb: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = cli(['probe', 'report', '--results', db, '--json']);
    rep.push(r.s);
    mb.push(r.mb);
    if (JSON.parse(r.stdout).nodes !== nodes) throw new Error('report counted the wrong number of nodes');
    html.push(cli(['probe', 'report', '--results', db, '--html', path.join(work, 'report.html')]).s);
    const m = cli(['migrate', 'check', 'containers/fs/singularity/alma9', '--results', db, '--repo', repo, '--json']);
    mig.push(m.s);
    migMb.push(m.mb);
    const t1 = performance.now();
    const q = spawnSync('sqlite3', [db, 'SELECT r.hostname, r.probe, r.doc FROM latest l JOIN results r ON r.id = l.result_id ORDER BY l.hostname, l.probe'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (q.status !== 0) throw new Error('sqlite3 failed');
    base3.push((performance.now() - t1) / 1000);
  }
  row(`probe report --json, ${count} results`, rep, 's', `peak RSS ${median(mb).toFixed(0)} MB`, '<= 5 s, <= 300 MB');
  row('  probe report (table + --html)', html, 's', '', '');
  row('  baseline: sqlite3 CLI reads the same rows', base3, 's', `report = x${(median(rep) / median(base3)).toFixed(2)}`, '');
  row(`migrate check, ${count} results`, mig, 's', `peak RSS ${median(migMb).toFixed(0)} MB`, '');
}

/** Uploads per second from 32 keep-alive connections. */
async function hammer(port: number, bodies: string[]): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  let next = 0;
  let bad = 0;
  const t0 = performance.now();
  const one = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/results', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        if (res.statusCode !== 201) bad++;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = next++; i < bodies.length; i = next++) await one(bodies[i]);
  }));
  agent.destroy();
  if (bad) throw new Error(`${bad} uploads not accepted`);
  return bodies.length / ((performance.now() - t0) / 1000);
}

async function benchServe(base: Upload): Promise<void> {
  const bodies = Array.from({ length: UPLOADS }, (_, i) => JSON.stringify(variant(base, i)));
  const served: number[] = [], bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const db = path.join(work, `serve-${i}.db`);
    const child = spawn(process.execPath, [CLI, 'probe', 'serve', '--results', db, '--port', '0', '--json'], { env: ENV, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b;
        try {
          resolve(JSON.parse(out).port);
        } catch { /* more to come */ }
      });
      child.once('exit', (c) => reject(new Error(`probe serve exited ${c}`)));
    });
    served.push(await hammer(port, bodies));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const s = openResultsStore(db, { readonly: true });
    const kept = s.count();
    s.close();
    if (kept !== UPLOADS * Object.keys(base.probes).length) throw new Error(`store holds ${kept} rows`);
    const floor = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end('{"stored":9}'));
    });
    await new Promise<void>((r) => floor.listen(0, '127.0.0.1', r));
    bare.push(await hammer((floor.address() as AddressInfo).port, bodies));
    floor.closeAllConnections();
    floor.close();
  }
  row(`probe serve: ${UPLOADS} uploads of ${(Buffer.byteLength(bodies[0]) / 1024).toFixed(1)} KiB (9 probes), 32 connections`, served, 'uploads/s', 'every row kept (counted)', '>= 500/s');
  row('  baseline: bare Node HTTP server, body read only', bare, 'uploads/s', `serve = ${((100 * median(served)) / median(bare)).toFixed(0)}% of it`, '');
}

async function main(): Promise<void> {
  try {
    const cvmfs = path.join(work, 'cvmfs');
    const mount = path.join(cvmfs, 'alice.example.org');
    fs.mkdirSync(mount, { recursive: true });
    const image = await makeImage(path.join(work, 'image'));
    const repo = path.join(work, 'repo');
    await initRepository(repo, { name: 'alice.example.org' });
    await publishTree(repo, await makeImage(path.join(work, 'alma9'), { isaLevel: 2, osRelease: OS_RELEASE('almalinux-9') }), 'containers/fs/singularity/alma9', { onProgress: () => undefined });
    await link(repo, 'containers/fs/singularity/default', 'alma9', { onProgress: () => undefined });
    const doc = await benchRun(image, cvmfs);
    benchReport(doc, repo);
    await benchServe(doc);
    console.log(`\nprobes benchmark: ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}, ${runs} runs, medians\n`);
    console.log(formatTable(['what', 'median', 'unit', 'runs', 'note', 'target'], rows));
  } finally {
    if (!keep) {
      fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(`${path.join(work, 'repo')}.keys`, { recursive: true, force: true });
    } else console.error(`kept ${work}`);
  }
}

await main();
