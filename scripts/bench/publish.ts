/**
 * Benchmark: publish a generated tree (default >= 1 GB, >= 50,000 files, mixed sizes, partly
 * compressible) into a fresh repository, then republish with 1% of the files changed; baselines
 * in the same invocation: `tar -c | pigz -p 2` and `cp -a` of the same tree.
 * Run: node --import tsx scripts/bench/publish.ts [--scale 1] [--runs 3] [--keep]   (medians of --runs)
 * Targets (cvmfs-publish/README.md, "Tests and benchmark"): first publish >= 2,000 files/s and >= 1.2x pigz throughput; incremental <= 10% of first.
 * The tree holds large files (above 64 MiB, >= 10% of its bytes: chunked, cvmfs-publish/chunk-store.mjs); a separate
 * part publishes one 1 GiB file of mixed content (--big-gib), edits 1 MiB in its middle and republishes (target: <= 5%
 * of its first publish), and the chunk detector's speed is measured in CPU time (target: >= 300 MB/s per core).
 * One more row publishes with GRIDFORGE_STORE_INCOMPRESSIBLE=0 (deflate level 6 for every file, as
 * pigz does) to show what storing incompressible content as stored blocks saves.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatTable } from '../lib/output.ts';
import { initRepository, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { DEFAULT_CHUNKING, nextCut, thresholdOf } from '../../cvmfs-publish/chunk-detector.mjs';

const args = process.argv.slice(2);
const scale = Number(args[args.indexOf('--scale') + 1] ?? 1) || 1;
const keep = args.includes('--keep');
const runs = Math.max(1, Number(args[args.indexOf('--runs') + 1] ?? 3) || 3);
const bigGib = args.includes('--big-gib') ? Number(args[args.indexOf('--big-gib') + 1]) : 1;

function words(n: number, seed: number): Buffer {
  const vocab = ['alice', 'jalien', 'cvmfs', 'grid', 'detector', 'event', 'track', 'cluster', 'calibration', 'run', 'physics', 'O2', '\n', 'export', 'lib', 'x86_64'];
  const parts: string[] = [];
  let len = 0;
  let s = seed;
  while (len < n) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const w = vocab[s % vocab.length];
    parts.push(w, s % 7 === 0 ? `${s % 1000}` : ' ');
    len += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** Half of the files compressible text, half random bytes. */
function content(size: number, i: number): Buffer {
  return i % 2 === 0 ? words(size, i) : randomBytes(size);
}

/** Large-file content: 8 MiB segments of text and random bytes, alternating (chunks deflated or stored). */
function mixed(size: number, seed: number): Buffer {
  const seg = 8 << 20;
  const parts: Buffer[] = [];
  for (let at = 0, k = 0; at < size; at += seg, k++) parts.push(k % 2 === 0 ? words(Math.min(seg, size - at), seed + k) : randomBytes(Math.min(seg, size - at)));
  return Buffer.concat(parts);
}

/** Files above 64 MiB: 2 of 80 MiB per scale 1 (>= 10% of the tree's bytes). */
const LARGE = 80 << 20;

function generate(root: string): { files: number; bytes: number; paths: string[]; largeBytes: number } {
  const paths: string[] = [];
  let bytes = 0;
  let largeBytes = 0;
  const large = Math.max(1, Math.round(2 * scale));
  for (let k = 0; k < large; k++) {
    const dir = path.join(root, 'large');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `big${k}.root`), mixed(LARGE, 1000 + k)); // not in `paths`: the 1% changed are small files
    largeBytes += LARGE;
  }
  bytes += largeBytes;
  const plan: [count: number, min: number, max: number][] = [
    [Math.round(48_000 * scale), 1024, 15 * 1024],
    [Math.round(1_900 * scale), 64 * 1024, 400 * 1024],
    [Math.max(1, Math.round(100 * scale)), 1 << 20, 5 << 20],
  ];
  let i = 0;
  for (const [count, min, max] of plan) {
    for (let k = 0; k < count; k++, i++) {
      const dir = path.join(root, `pkg${i % 40}`, `sub${(i >> 6) % 32}`);
      if (k === 0 || i % 64 === 0) fs.mkdirSync(dir, { recursive: true });
      const size = min + ((i * 2654435761) >>> 0) % (max - min);
      const p = path.join(dir, `f${i}.dat`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(p, content(size, i));
      paths.push(p);
      bytes += size;
    }
  }
  return { files: paths.length + large, bytes, paths, largeBytes };
}

/** Detector speed: MB/s per core of CPU time over 256 MiB of random bytes (every byte scanned). */
function detectorSpeed(): number {
  const data = randomBytes(256 << 20);
  const threshold = thresholdOf(DEFAULT_CHUNKING.avg);
  let best = 0;
  for (let r = 0; r < 3; r++) {
    const t = process.cpuUsage();
    let scanned = 0;
    for (let at = 0; at < data.length; ) {
      const len = Math.min(DEFAULT_CHUNKING.max, data.length - at);
      const cut = nextCut(data.subarray(at), len, DEFAULT_CHUNKING.min, DEFAULT_CHUNKING.max, threshold);
      scanned += Math.max(0, cut - DEFAULT_CHUNKING.min + 32);
      at += cut;
    }
    const u = process.cpuUsage(t);
    best = Math.max(best, scanned / 1e6 / ((u.user + u.system) / 1e6));
  }
  return best;
}

/** One large file: first publish, then 1 MiB changed in its middle and republished (seconds each, new chunk objects). */
async function bigFileEdit(work: string, run: number): Promise<{ first: number; second: number; size: number }> {
  const size = Math.round(bigGib * 1024) << 20;
  const src = path.join(work, `big-src${run}`);
  fs.mkdirSync(src, { recursive: true });
  const file = path.join(src, 'data.root');
  fs.writeFileSync(file, mixed(size, 77 + run));
  const repo = path.join(work, `big-repo${run}`);
  await initRepository(repo, { name: 'bench.example.org', keysDir: path.join(work, `big-keys${run}`) });
  execFileSync('sync');
  const [, first] = await timeAsync(() => publishTree(repo, src, 'sw/big'));
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, randomBytes(1 << 20), 0, 1 << 20, Math.floor(size / 2)); // in place: same inode, new mtime
  fs.closeSync(fd);
  execFileSync('sync');
  const [, second] = await timeAsync(() => publishTree(repo, src, 'sw/big'));
  return { first, second, size };
}

function time<T>(fn: () => T): [T, number] {
  const t0 = process.hrtime.bigint();
  const r = fn();
  return [r, Number(process.hrtime.bigint() - t0) / 1e9];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return [r, Number(process.hrtime.bigint() - t0) / 1e9];
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-cvmfs-bench-'));
try {
  const src = path.join(work, 'src');
  process.stderr.write(`bench: generating tree in ${src} (scale ${scale})\n`);
  const [gen, genS] = time(() => generate(src));
  process.stderr.write(`bench: ${gen.files} files, ${(gen.bytes / 1e9).toFixed(2)} GB (${((gen.largeBytes / gen.bytes) * 100).toFixed(0)}% in files above 64 MiB) in ${genS.toFixed(1)} s\n`);
  execFileSync('sync');
  const mb = gen.bytes / 1e6;

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const t: Record<'pigz' | 'cp' | 'first' | 'deflateAll' | 'second' | 'verify' | 'bigFirst' | 'bigSecond', number[]> = { pigz: [], cp: [], first: [], deflateAll: [], second: [], verify: [], bigFirst: [], bigSecond: [] };
  let bigSize = 0;
  const stages: Record<'scan' | 'objects' | 'catalogs' | 'commit', number[]> = { scan: [], objects: [], catalogs: [], commit: [] };
  const quiet = { onProgress: (m: string) => (m.startsWith('objects:') ? process.stderr.write(`  ${m}\n`) : undefined) };
  const changed = Math.round(gen.files / 100);
  let first: Awaited<ReturnType<typeof publishTree>> | undefined;
  let second: Awaited<ReturnType<typeof publishTree>> | undefined;
  let verifyOk = true;
  let repoBytes = 0;
  let deflateAllBytes = 0;
  let pigzBytes = 0;
  for (let run = 0; run < runs; run++) {
    // Every timed step starts with no dirty pages left by the step before it (untimed sync), so
    // none pays for another's writeback; no step syncs its own output (pigz does not either).
    // Nothing is deleted until the end: on ext4 without a journal (this machine's root) creating
    // files right after tens of thousands were deleted skips every recently freed inode, which
    // made cp -a vary from 2 to 25 s; outputs of every run stay until the bench ends.
    const settle = () => execFileSync('sync');
    settle();
    process.stderr.write(`bench: run ${run + 1}/${runs}: tar -c | pigz -p 2\n`);
    t.pigz.push(time(() => execFileSync('sh', ['-c', `tar -C ${src} -cf - . | pigz -p 2 > ${work}/tree${run}.tar.gz`]))[1]);
    settle();
    process.stderr.write(`bench: run ${run + 1}/${runs}: cp -a\n`);
    t.cp.push(time(() => execFileSync('cp', ['-a', src, path.join(work, `copy${run}`)]))[1]);

    const repo = path.join(work, `repo${run}`);
    await initRepository(repo, { name: 'bench.example.org', keysDir: path.join(work, `keys${run}`) });
    settle();
    process.stderr.write(`bench: run ${run + 1}/${runs}: first publish\n`);
    let s0: number;
    [first, s0] = await timeAsync(() => publishTree(repo, src, 'sw/tree', quiet));
    t.first.push(s0);
    repoBytes = Number(execFileSync('du', ['-sb', path.join(repo, 'data')], { encoding: 'utf8' }).split('\t')[0]);

    const repoAll = path.join(work, `repo-deflate-all${run}`);
    await initRepository(repoAll, { name: 'bench.example.org', keysDir: path.join(work, `keys-deflate-all${run}`) });
    settle();
    process.stderr.write(`bench: run ${run + 1}/${runs}: first publish, deflate for every file\n`);
    process.env.GRIDFORGE_STORE_INCOMPRESSIBLE = '0';
    try {
      t.deflateAll.push((await timeAsync(() => publishTree(repoAll, src, 'sw/tree', quiet)))[1]);
    } finally {
      delete process.env.GRIDFORGE_STORE_INCOMPRESSIBLE;
    }
    deflateAllBytes = Number(execFileSync('du', ['-sb', path.join(repoAll, 'data')], { encoding: 'utf8' }).split('\t')[0]);
    pigzBytes = fs.statSync(`${work}/tree${run}.tar.gz`).size;
    // change 1% of the files (other files in each run)
    for (let k = 0; k < changed; k++) {
      const p = gen.paths[(k * 97 + run * 13) % gen.paths.length];
      const size = fs.statSync(p).size;
      fs.writeFileSync(p, content(size, k + 7 + run * 100_003));
    }
    settle();
    process.stderr.write(`bench: run ${run + 1}/${runs}: republish with ${changed} files changed\n`);
    let s1: number;
    // where the republish's time goes: scan, waiting for objects, catalogs, history + signing + manifest
    const t0 = process.hrtime.bigint();
    const marks: Record<string, number> = {};
    const mark = (m: string) => {
      const at = Number(process.hrtime.bigint() - t0) / 1e9;
      if (m.startsWith('publish:')) marks.scan = at;
      else if (m === 'stage: catalogs') marks.objects = at;
      else if (m === 'stage: history') marks.catalogs = at;
    };
    [second, s1] = await timeAsync(() => publishTree(repo, src, 'sw/tree', { onProgress: mark }));
    t.second.push(s1);
    stages.scan.push(marks.scan);
    stages.objects.push(marks.objects - marks.scan);
    stages.catalogs.push(marks.catalogs - marks.objects);
    stages.commit.push(s1 - marks.catalogs);
    const [v, s2] = await timeAsync(() => verifyRepository(repo));
    t.verify.push(s2);
    verifyOk &&= v.ok;
    if (bigGib > 0) {
      process.stderr.write(`bench: run ${run + 1}/${runs}: ${bigGib} GiB file, publish, 1 MiB edit, republish\n`);
      const b = await bigFileEdit(work, run);
      t.bigFirst.push(b.first);
      t.bigSecond.push(b.second);
      bigSize = b.size;
    }
  }
  const detectMBs = detectorSpeed();
  const [pigzS, cpS, firstS, deflateAllS, secondS, verifyS] = [median(t.pigz), median(t.cp), median(t.first), median(t.deflateAll), median(t.second), median(t.verify)];
  const runsOf = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' / ');

  const rows: (string | number)[][] = [
    ['tar -c | pigz -p 2 (baseline)', pigzS.toFixed(2), runsOf(t.pigz), Math.round(gen.files / pigzS), (mb / pigzS).toFixed(0), '1.00'],
    ['cp -a (baseline)', cpS.toFixed(2), runsOf(t.cp), Math.round(gen.files / cpS), (mb / cpS).toFixed(0), (pigzS / cpS).toFixed(2)],
    ['gridforge first publish', firstS.toFixed(2), runsOf(t.first), Math.round(gen.files / firstS), (mb / firstS).toFixed(0), (pigzS / firstS).toFixed(2)],
    ['first publish, deflate for every file', deflateAllS.toFixed(2), runsOf(t.deflateAll), Math.round(gen.files / deflateAllS), (mb / deflateAllS).toFixed(0), (pigzS / deflateAllS).toFixed(2)],
    [`gridforge republish (${changed} changed)`, secondS.toFixed(2), runsOf(t.second), Math.round(gen.files / secondS), (mb / secondS).toFixed(0), (pigzS / secondS).toFixed(2)],
    ['gridforge verify (all objects)', verifyS.toFixed(2), runsOf(t.verify), Math.round(gen.files / verifyS), (mb / verifyS).toFixed(0), (pigzS / verifyS).toFixed(2)],
  ];
  const bigFirstS = bigGib > 0 ? median(t.bigFirst) : 0;
  const bigSecondS = bigGib > 0 ? median(t.bigSecond) : 0;
  if (bigGib > 0) {
    rows.push([`${bigGib} GiB file, first publish`, bigFirstS.toFixed(2), runsOf(t.bigFirst), '1', (bigSize / 1e6 / bigFirstS).toFixed(0), '-']);
    rows.push([`${bigGib} GiB file, republish after 1 MiB edit`, bigSecondS.toFixed(2), runsOf(t.bigSecond), '1', (bigSize / 1e6 / bigSecondS).toFixed(0), '-']);
  }
  process.stdout.write(`\npublish benchmark: ${gen.files} files, ${(gen.bytes / 1e9).toFixed(2)} GB, ${os.cpus().length} cores, medians of ${runs} run(s), load ${os.loadavg()[0].toFixed(1)}\n\n`);
  process.stdout.write(`${formatTable(['run', 'median s', 'runs (s)', 'files/s', 'MB/s', 'x pigz throughput'], rows)}\n\n`);
  process.stdout.write(`first publish: ${first!.filesStored} files stored, ${first!.catalogsWritten} catalogs; republish: ${second!.filesStored} stored, ${second!.filesReused} reused; repository data after the first publish ${(repoBytes / 1e9).toFixed(3)} GB (deflate for every file: ${(deflateAllBytes / 1e9).toFixed(3)} GB; pigz archive ${(pigzBytes / 1e9).toFixed(3)} GB); verify ok=${verifyOk}\n`);
  const ms = (xs: number[]) => `${(median(xs) * 1000).toFixed(0)} ms (${xs.map((x) => (x * 1000).toFixed(0)).join(' / ')})`;
  process.stdout.write(`republish stages (medians): scan ${ms(stages.scan)}, objects ${ms(stages.objects)}, catalogs ${ms(stages.catalogs)}, history + manifest ${ms(stages.commit)}\n`);
  process.stdout.write(`tree: ${((gen.largeBytes / gen.bytes) * 100).toFixed(1)}% of its bytes in files above 64 MiB; chunk detector ${detectMBs.toFixed(0)} MB/s per core (CPU time)\n`);
  const met = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  process.stdout.write(`targets: first >= 2000 files/s: ${(gen.files / firstS).toFixed(0)} ${met(gen.files / firstS >= 2000)}; >= 1.2x pigz: ${(pigzS / firstS).toFixed(3)} ${met(pigzS / firstS >= 1.2)}; incremental <= 10% of first: ${((secondS / firstS) * 100).toFixed(1)}% ${met(secondS / firstS <= 0.1)}; detector >= 300 MB/s: ${met(detectMBs >= 300)}${bigGib > 0 ? `; large-file edit <= 5% of its first publish: ${((bigSecondS / bigFirstS) * 100).toFixed(1)}% ${met(bigSecondS / bigFirstS <= 0.05)}` : ''}\n`);
} finally {
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else process.stderr.write(`bench: kept ${work}\n`);
}
