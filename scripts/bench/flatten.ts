/**
 * Benchmark: flattening and sandbox writing against the incumbents, in one invocation.
 *
 *   node --import tsx scripts/bench/flatten.ts [--runs 3] [--only <substrings of methods, comma-separated>] [--dir <tmp>] [--keep]
 *
 * Builds (once, cached by tag) a local image of >= 1 GB, >= 30,000 files and 8 layers on top of
 * the base (whiteouts, an opaque directory, hardlinks across directories, rewritten large files),
 * then reports medians, ratios and peak RSS for:
 *   flatten case (engine -> engine): gridforge flattenToEngine vs `docker export | docker import`,
 *   with the engine's own `docker import` of the finished layer tar and engine -> archive
 *   sandbox case (OCI layout -> directory): gridforge writeSandbox vs `umoci unpack` vs the raw
 *   baseline `tar -x` of the already-uncompressed layer tars in order.
 * Each gridforge run is a child process so its peak RSS (getrusage maxrss) is its own.
 * The machine may be shared: timings are noisy; runs of the methods are interleaved.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { formatTable } from '../lib/output.ts';

const IMAGE = 'gfflat-bench:v1';
const SELF = fileURLToPath(import.meta.url);

const GEN_PL = String.raw`
use strict;
my ($cmd, @a) = @ARGV;
sub blk { my $n = shift; my $s = ''; $s .= pack('N', int(rand(4294967295))) for 1 .. ($n / 4); return $s; }
if ($cmd eq 'small') {
  my ($dir, $count, $min, $max, $seed) = @a; srand($seed); my $pool = blk(65536);
  for my $i (0 .. $count - 1) {
    my $d = "$dir/d" . int($i / 100); mkdir $d;
    my $sz = $min + int(rand($max - $min));
    open(my $f, '>', "$d/f$i") or die "$d/f$i: $!"; print $f "file $i\n", substr($pool, int(rand(65536 - $sz)), $sz); close $f;
  }
} elsif ($cmd eq 'big') {
  my ($dir, $count, $mb) = @a; srand(7); my $pool = blk(1 << 20);
  for my $i (0 .. $count - 1) { open(my $f, '>', "$dir/f$i") or die; print $f "$i:$_", $pool for 1 .. $mb; close $f; }
} elsif ($cmd eq 'links') {
  my ($src, $dst, $count) = @a; my @files = sort glob("$src/d*/f*");
  for my $i (0 .. $count - 1) { link($files[$i * 3], "$dst/l$i") or die "link: $!"; }
} elsif ($cmd eq 'append') {
  my ($dir, $count) = @a; for my $i (1 .. $count) { open(my $f, '>>', "$dir/f$i") or die; print $f "appended\n"; close $f; }
}
`;

const DOCKERFILE = `FROM gridforge/base:debian-bookworm
COPY gen.pl /gen.pl
RUN mkdir -p /data/s1 && perl /gen.pl small /data/s1 10000 1024 8192 1
RUN mkdir -p /data/b1 && perl /gen.pl big /data/b1 40 10
RUN mkdir -p /data/s2 /data/s2links && perl /gen.pl small /data/s2 10000 1024 8192 2 && perl /gen.pl links /data/s2 /data/s2links 2000
RUN find /data/s1 -type f -name '*3' -delete && rm /data/b1/f0 && rm -r /data/s1/d1 /data/s1/d10 /data/s1/d11
RUN mkdir -p /data/b2 && perl /gen.pl big /data/b2 30 10
RUN mkdir -p /data/s3 && perl /gen.pl small /data/s3 10000 1024 8192 3
RUN perl /gen.pl append /data/b1 10 && rm -r /data/s2/d0 && mkdir -p /data/s2/d0 && perl /gen.pl small /data/s2/d0 2000 512 4096 4
`;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i !== -1 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

async function ensureImage(): Promise<void> {
  const r = await execa('docker', ['image', 'inspect', IMAGE], { reject: false });
  if (r.exitCode === 0) return;
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'gfflat-bench-ctx-'));
  try {
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
    fs.writeFileSync(path.join(ctx, 'gen.pl'), GEN_PL);
    process.stderr.write(`building ${IMAGE} (once; cached by tag)...\n`);
    await execa('docker', ['build', '-q', '-t', IMAGE, ctx], { env: { DOCKER_BUILDKIT: '0' }, stderr: 'inherit' });
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/** Copy `size` bytes at `offset` of `file` into `out`. */
function copyRange(file: string, offset: number, size: number, out: string): void {
  const fd = fs.openSync(file, 'r');
  const od = fs.openSync(out, 'w');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (let off = 0; off < size; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - off), offset + off);
      if (n === 0) throw new Error(`short read in ${file}`);
      fs.writeSync(od, buf, 0, n);
      off += n;
    }
  } finally {
    fs.closeSync(fd);
    fs.closeSync(od);
  }
}

/** An OCI layout (uncompressed layers) made from a docker save archive with our own writer. */
async function ociFromSave(save: string, dir: string): Promise<{ layers: string[]; files: number; bytes: number }> {
  const { indexTarFile, readMember } = await import('../../images/archive/tar-index.ts');
  const idx = indexTarFile(save);
  const manifest = JSON.parse(readMember(save, idx.get('manifest.json')!).toString())[0];
  const cfg = readMember(save, idx.get(manifest.Config)!);
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const fd = fs.openSync(save, 'r');
  const layers: { digest: string; size: number; file: string }[] = [];
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const l of manifest.Layers as string[]) {
    const m = idx.get(l)!;
    const tmp = path.join(blobs, 'tmp');
    const out = fs.openSync(tmp, 'w');
    const h = crypto.createHash('sha256');
    for (let off = 0; off < m.size; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, m.size - off), m.offset + off);
      h.update(buf.subarray(0, n));
      fs.writeSync(out, buf, 0, n);
      off += n;
    }
    fs.closeSync(out);
    const hex = h.digest('hex');
    fs.renameSync(tmp, path.join(blobs, hex));
    layers.push({ digest: `sha256:${hex}`, size: m.size, file: path.join(blobs, hex) });
  }
  fs.closeSync(fd);
  const put = (b: Buffer) => { const hex = crypto.createHash('sha256').update(b).digest('hex'); fs.writeFileSync(path.join(blobs, hex), b); return { digest: `sha256:${hex}`, size: b.length }; };
  const c = put(cfg);
  const man = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c }, layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size })) })));
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { layers: layers.map((l) => l.file), files: 0, bytes: layers.reduce((s, l) => s + l.size, 0) };
}

interface Sample { ms: number; rssKB?: number }

function runChild(cmd: string, args: string[], opts: { input?: NodeJS.ReadableStream } = {}): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '__RSS__ %M', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`));
      const m = /__RSS__ (\d+)/.exec(err);
      resolve({ ms, rssKB: m ? Number(m[1]) : undefined });
    });
    void opts;
  });
}

function sh(script: string): Promise<Sample> {
  return runChild('/bin/sh', ['-c', script]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function child(mode: string, a: string, b: string): Promise<void> {
  process.env.GRIDFORGE_QUIET = '1';
  if (mode === 'flatten-engine') {
    const { flattenToEngine } = await import('../../images/flatten/index.ts');
    await flattenToEngine({ source: a, tag: b, tmpDir: process.env.GF_BENCH_TMP });
  } else if (mode === 'flatten-archive') {
    const { flattenToArchive } = await import('../../images/flatten/index.ts');
    await flattenToArchive({ source: a, output: b, tmpDir: process.env.GF_BENCH_TMP });
  } else if (mode === 'sandbox') {
    const { writeSandbox } = await import('../../images/sandbox/index.ts');
    await writeSandbox({ source: a, output: b, tmpDir: process.env.GF_BENCH_TMP });
  }
}

async function main(): Promise<void> {
  const ci = process.argv.indexOf('--child');
  if (ci !== -1) return child(process.argv[ci + 1], process.argv[ci + 2], process.argv[ci + 3]);
  const runs = Number(arg('--runs', '3'));
  await ensureImage();
  const work = fs.mkdtempSync(path.join(arg('--dir', os.tmpdir()), 'gfflat-bench-'));
  process.env.GF_BENCH_TMP = work;
  const flatTag = 'gfflat-bench:flat';
  const importTag = 'gfflat-bench:imported';
  const node = process.execPath;
  const gf = (mode: string, a: string, b: string) => runChild(node, ['--import', 'tsx', SELF, '--child', mode, a, b]);
  try {
    process.stderr.write('preparing: docker save + OCI layout (not timed)...\n');
    const save = path.join(work, 'save.tar');
    execFileSync('docker', ['save', '-o', save, IMAGE]);
    const oci = path.join(work, 'oci');
    const { layers, bytes } = await ociFromSave(save, oci);
    fs.rmSync(save);
    const inspect = JSON.parse(execFileSync('docker', ['image', 'inspect', IMAGE]).toString())[0];
    const entries = Number(execFileSync('/bin/sh', ['-c', `docker run --rm ${IMAGE} sh -c 'find / -xdev | wc -l'`]).toString().trim());
    process.stderr.write(`image ${IMAGE}: ${inspect.RootFS.Layers.length} layers, ${(bytes / 1e9).toFixed(2)} GB of layer tars, ${(inspect.Size / 1e9).toFixed(2)} GB merged, ${entries} paths\n`);

    // The engine's own cost of registering the finished single layer (`docker import` of the layer
    // tar file, from the page cache): the part of every engine -> engine flatten that no
    // flattener controls (gridforge streams the same bytes into `docker import -`).
    process.stderr.write('preparing: the finished flattened layer tar (not timed)...\n');
    const floorArchive = path.join(work, 'floor.tar');
    await gf('flatten-archive', oci, floorArchive);
    const floorLayer = path.join(work, 'floor-layer.tar');
    const { indexTarFile } = await import('../../images/archive/tar-index.ts');
    const idx = indexTarFile(floorArchive);
    const layerMember = [...idx.entries()].find(([name]) => name.startsWith('blobs/sha256/'))![1];
    copyRange(floorArchive, layerMember.offset, layerMember.size, floorLayer);
    fs.rmSync(floorArchive);
    const floorTag = 'gfflat-bench:floor';

    const methods: Record<string, () => Promise<Sample>> = {
      'gridforge flatten (engine -> engine)': async () => gf('flatten-engine', IMAGE, flatTag),
      'docker import of the finished layer tar (engine side)': async () => {
        const s = await runChild('docker', ['import', floorLayer, floorTag]);
        await execa('docker', ['rmi', floorTag], { reject: false });
        return s;
      },
      'gridforge flatten (engine -> archive)': async () => {
        const s = await gf('flatten-archive', IMAGE, path.join(work, 'flat-engine.tar'));
        fs.rmSync(path.join(work, 'flat-engine.tar'), { force: true });
        return s;
      },
      'docker export | docker import': async () => {
        const c = `gfflat-bench-exp-${process.pid}`;
        const s = await sh(`docker create --name ${c} ${IMAGE} /x >/dev/null && docker export ${c} | docker import - ${importTag} >/dev/null; rc=$?; docker rm -f ${c} >/dev/null; exit $rc`);
        return s;
      },
      'gridforge flatten (OCI dir -> archive)': async () => {
        const s = await gf('flatten-archive', oci, path.join(work, 'flat.tar'));
        fs.rmSync(path.join(work, 'flat.tar'), { force: true });
        return s;
      },
      'gridforge sandbox (OCI dir -> dir)': async () => {
        const out = path.join(work, 'sandbox');
        const s = await gf('sandbox', oci, out);
        fs.rmSync(out, { recursive: true, force: true });
        return s;
      },
      'umoci unpack (OCI dir -> dir)': async () => {
        const out = path.join(work, 'bundle');
        const s = await runChild('umoci', ['unpack', '--image', `${oci}:bench`, out]);
        fs.rmSync(out, { recursive: true, force: true });
        return s;
      },
      'raw tar -x of the layer tars in order': async () => {
        const out = path.join(work, 'raw');
        fs.mkdirSync(out);
        const s = await sh(layers.map((l) => `tar -xf ${l} -C ${out}`).join(' && '));
        fs.rmSync(out, { recursive: true, force: true });
        return s;
      },
    };
    const only = arg('--only', '').split(',').filter(Boolean);
    if (only.length) for (const k of Object.keys(methods)) if (!only.some((o) => k.includes(o))) delete methods[k];
    const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(methods).map((k) => [k, []]));
    for (let r = 0; r < runs; r++) {
      for (const [name, fn] of Object.entries(methods)) {
        const s = await fn();
        samples[name].push(s);
        process.stderr.write(`run ${r + 1}/${runs}  ${name}: ${(s.ms / 1000).toFixed(2)} s, peak RSS ${s.rssKB ? `${(s.rssKB / 1024).toFixed(0)} MB` : '?'}\n`);
      }
    }
    const med = (k: string) => median(samples[k].map((s) => s.ms));
    const rss = (k: string) => Math.max(...samples[k].map((s) => s.rssKB ?? 0));
    const rows = Object.keys(methods).map((k) => [k, (med(k) / 1000).toFixed(2), samples[k].map((s) => (s.ms / 1000).toFixed(1)).join(' '), `${(rss(k) / 1024).toFixed(0)} MB`]);
    console.log(`\n${IMAGE}: ${inspect.RootFS.Layers.length} layers, ${(bytes / 1e9).toFixed(2)} GB layer tars, ${entries} paths; ${runs} runs; ${os.cpus().length} cores; load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
    console.log(formatTable(['method', 'median s', 'runs (s)', 'peak RSS (process)'], rows));
    const ratio = (a: string, b: string) => (samples[a]?.length && samples[b]?.length ? (med(a) / med(b)).toFixed(2) : 'n/a');
    console.log('');
    console.log(formatTable(['ratio', 'value', 'target'], [
      ['docker export|import / gridforge flatten (engine)', ratio('docker export | docker import', 'gridforge flatten (engine -> engine)'), '>= 3'],
      ['docker export|import / docker import of the finished layer', ratio('docker export | docker import', 'docker import of the finished layer tar (engine side)'), '(info)'],
      ['docker export|import / gridforge flatten (engine -> archive)', ratio('docker export | docker import', 'gridforge flatten (engine -> archive)'), '(info)'],
      ['umoci unpack / gridforge sandbox', ratio('umoci unpack (OCI dir -> dir)', 'gridforge sandbox (OCI dir -> dir)'), '>= 1.5'],
      ['gridforge sandbox / raw tar -x', ratio('gridforge sandbox (OCI dir -> dir)', 'raw tar -x of the layer tars in order'), '<= 1.5'],
      ['gridforge flatten (OCI -> archive) / raw tar -x', ratio('gridforge flatten (OCI dir -> archive)', 'raw tar -x of the layer tars in order'), '(info)'],
    ]));
    const gfRss = Object.keys(samples).filter((k) => k.startsWith('gridforge')).map(rss);
    console.log(`\npeak RSS of gridforge processes: ${(Math.max(0, ...gfRss) / 1024).toFixed(0)} MB (target < 300 MB)`);
  } finally {
    await execa('docker', ['rmi', '-f', flatTag, importTag, 'gfflat-bench:floor'], { reject: false });
    if (!process.argv.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
