/**
 * Benchmark: `gridforge image sync` against the other ways of getting the same image into a
 * CernVM-FS repository, in one invocation (figures in release/image-sync/README.md).
 *
 *   node --import tsx scripts/bench/image-sync.ts [--runs 3] [--keep]
 *
 * Image: the project's job image (`gridforge/job:*`, built by `gridforge image build job` if the
 * engine has none; else a Debian image with python3 from gridforge/base:debian-bookworm), saved
 * once with `docker save` (the archive) and pushed once with skopeo into a local registry
 * (Debian's `docker-registry` on loopback, test/images/registry/helpers.ts; skopeo gzips the
 * layers as any registry push does). Then, medians (and fastest) of --runs, methods interleaved
 * per run, every gridforge command a child process as a user runs it: scripts/bin/gridforge.mjs of
 * a private copy of the sources, compiled by scripts/build.mjs (the checkout is shared and edited,
 * which would leave its build stale; one resync row runs the checkout through tsx):
 *   1. `image sync <one-entry wish list> --repo <fresh repo>` vs `image sandbox <archive> --repo`
 *      (target: sync <= 1.2x the archive);
 *   2. the peers' pipeline (cvmfs DUCC, cvmfs-singularity-sync): `skopeo copy docker://... oci:`,
 *      `umoci unpack --rootless`, `gridforge repo publish` of the rootfs; ratio to sync;
 *   3. resync of a 100-entry wish list (4 small images under 100 repository:tag names) with
 *      nothing changed, through the CLI and through syncImages in this process
 *      (target: <= 1 s per 100 entries, the CLI);
 *   4. `image flatten <engine ref>` (engine -> engine) vs `docker import` of the finished
 *      flattened layer tar (target <= 1.15x) and vs `docker export | docker import`.
 * Every timed run starts on a quiet machine (quiet.ts: writeback done, under 10% of the cores busy:
 * dockerd's clean-up of the image the previous row imported no longer lands on the next row), and
 * sync and the archive take turns going first.
 * The machine may be shared: the load average is printed with the table and with every run,
 * and the CPU time (user + sys of the process and the children it reaped: igzip/pigz, not the
 * registry's or dockerd's) beside the wall time of every method run as our child.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync, spawn } from 'node:child_process';
import { execa } from 'execa';
import { formatTable } from '../lib/output.ts';
import { buildIsCurrent, PROJECT_FILES } from '../build-stamp.mjs';
import { CLI, skopeoPush, startRegistry, type Registry } from '../../test/images/registry/helpers.ts';
import { imageConfig, layerTar, sha256hex } from '../../test/images/flatten/helpers.ts';
import { waitQuiet } from './quiet.ts';

const args = process.argv.slice(2);
const runs = Math.max(1, Number(args[args.indexOf('--runs') + 1] ?? 3) || 3);
const keep = args.includes('--keep');
const ROOT = path.resolve(import.meta.dirname, '../..');
const BENCH_TAG = 'gfsync-bench:job';
const FLAT_TAG = 'gfsync-bench:flat';
const FLOOR_TAG = 'gfsync-bench:floor';
const EXPORT_TAG = 'gfsync-bench:exported';
const SMALL_REPOS = 4;
const ENTRIES = 100;
const TREE_PATH = 'containers/fs/singularity/job';

const say = (m: string) => process.stderr.write(`bench: ${m}\n`);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
/** Before every timed run: writeback done and the machine quiet (quiet.ts); runs that started on a busy machine are counted. */
let notQuiet = 0;
const settle = async () => { if ((await waitQuiet()).timedOut) notQuiet++; };

interface Sample { s: number; cpu: number; stdout: string }

/** Wall seconds and CPU seconds (user + sys, its reaped children included: pigz, igzip) of one child process; fails with its stderr's tail. */
function timed(cmd: string, argv: string[], env: Record<string, string> = {}): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '__CPU__ %U %S', cmd, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRIDFORGE_QUIET: '1', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /__CPU__ ([\d.]+) ([\d.]+)/.exec(err);
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(' ')} failed (${code}): ${err.slice(-2000)}`));
      else resolve({ s, cpu: m ? Number(m[1]) + Number(m[2]) : NaN, stdout: out });
    });
  });
}

/** The CLI as users run it: the compiled build, of a private copy of the sources (others edit the checkout, which would make its build stale). */
let copyCli = '';
const gf = (argv: string[]) => timed(process.execPath, [copyCli, ...argv]);
/** The CLI of the checkout through tsx (GRIDFORGE_TSX=1), as in development. */
const gfTsx = (argv: string[]) => timed(process.execPath, [CLI, ...argv], { GRIDFORGE_TSX: '1' });

function privateBuild(work: string): string {
  const copy = path.join(work, 'src');
  fs.mkdirSync(copy);
  execFileSync('cp', ['-a', ...PROJECT_FILES, copy], { cwd: ROOT });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  execFileSync(process.execPath, [path.join(copy, 'scripts/build.mjs')], { stdio: 'ignore' });
  return path.join(copy, 'scripts/bin/gridforge.mjs');
}

const buildStillCurrent = () => buildIsCurrent(path.resolve(path.dirname(copyCli), '../..'));

/** The job image: an existing gridforge/job image, else built from templates/, else a Debian + python3 image. */
async function jobImage(): Promise<{ ref: string; built?: string }> {
  const have = (await execa('docker', ['images', 'gridforge/job', '--format', '{{.Repository}}:{{.Tag}}'], { reject: false })).stdout.split('\n').filter((l) => l && !l.includes('<none>'));
  if (have.length) return { ref: have[0] };
  say('no gridforge/job image in the engine: gridforge image build job (at most 10 min)');
  const b = await execa(process.execPath, [CLI, 'image', 'build', 'job'], { reject: false, timeout: 600_000, env: { GRIDFORGE_QUIET: '1' } });
  const ref = b.stdout.trim().split('\n').pop() ?? '';
  if (b.exitCode === 0 && ref) return { ref };
  say(`image build job failed (${b.stderr.slice(-300)}); building a Debian image with python3 instead`);
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'gfsync-bench-ctx-'));
  try {
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM gridforge/base:debian-bookworm\nRUN apt-get update || true; apt-get install -y --no-install-recommends python3 python3-numpy perl && rm -rf /var/lib/apt/lists/*\n');
    await execa('docker', ['build', '-q', '-t', 'gfsync-bench:fallback', ctx], { stderr: 'inherit' });
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
  return { ref: 'gfsync-bench:fallback', built: 'gfsync-bench:fallback' };
}

/** A small single-platform image (gzip layer) as an OCI layout; returns the layout and its manifest. */
function smallImage(dir: string, k: number): { manifest: Buffer } {
  const files = Array.from({ length: 20 }, (_, i) => ({ path: `opt/app/f${i}`, data: `image ${k} file ${i}\n`.repeat(50) }));
  const raw = layerTar([{ path: 'etc/', type: 'dir' }, { path: 'etc/os-release', data: `ID=gfsync-small-${k}\n` }, { path: 'opt/', type: 'dir' }, { path: 'opt/app/', type: 'dir' }, ...files]);
  const layer = zlib.gzipSync(raw);
  const config = imageConfig({ layers: [raw], config: { Env: [`SMALL=${k}`], Cmd: ['/bin/sh'] } });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256hex(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha256hex(layer)}`, size: layer.length }],
  }));
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of [config, layer, manifest]) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', sha256hex(b)), b);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'base' } }] }));
  return { manifest };
}

/** 4 small images under 100 repository:tag names; returns the 100-entry wish list. */
async function hundredEntries(reg: Registry, work: string): Promise<string> {
  const lines = ['images:'];
  for (let k = 0; k < SMALL_REPOS; k++) {
    const layout = path.join(work, `small${k}`);
    const { manifest } = smallImage(layout, k);
    await skopeoPush(reg, layout, 'base', `small${k}:base`);
    for (let i = k; i < ENTRIES; i += SMALL_REPOS) {
      const res = await fetch(`http://${reg.host}/v2/small${k}/manifests/t${i}`, { method: 'PUT', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest.toString() });
      if (res.status !== 201) throw new Error(`PUT manifest small${k}:t${i}: HTTP ${res.status} ${await res.text()}`);
      lines.push(`  - image: docker://${reg.host}/small${k}`, `    tags: ["t${i}"]`);
    }
  }
  const file = path.join(work, 'hundred.yaml');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function initRepo(dir: string): Promise<void> {
  await gf(['repo', 'init', dir, '--name', 'bench.example.org', '--keys', `${dir}.keys`]);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfsync-bench-'));
  let reg: Registry | undefined;
  let built: string | undefined;
  const tags = [BENCH_TAG, FLAT_TAG, FLOOR_TAG, EXPORT_TAG];
  try {
    say('preparing (not timed): a private copy of the sources, compiled (scripts/build.mjs)');
    copyCli = privateBuild(work);
    const job = await jobImage();
    built = job.built;
    await execa('docker', ['tag', job.ref, BENCH_TAG]); // our own name: others may retag theirs meanwhile
    const archive = path.join(work, 'job.tar');
    say(`preparing (not timed): docker save ${job.ref}, registry, skopeo push`);
    await execa('docker', ['save', '-o', archive, BENCH_TAG]);
    const inspect = JSON.parse((await execa('docker', ['image', 'inspect', BENCH_TAG])).stdout)[0];
    reg = await startRegistry();
    await execa('skopeo', ['copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${reg.host}/job:v1`]);
    const regBytes = Number(execFileSync('du', ['-sb', reg.storage], { encoding: 'utf8' }).split('\t')[0]);
    const one = path.join(work, 'one.yaml');
    fs.writeFileSync(one, `tree: containers/fs/singularity/sha256-{digest}\nimages:\n  - image: docker://${reg.host}/job\n    tags: ["v1"]\n`);
    const hundred = await hundredEntries(reg, work);
    const repo100 = path.join(work, 'repo100');
    await initRepo(repo100);
    await gf(['image', 'sync', hundred, '--repo', repo100, '--tmp-dir', work]);
    const files = Number((await execa('docker', ['run', '--rm', '--network', 'none', '--entrypoint', 'sh', BENCH_TAG, '-c', 'find / -xdev | wc -l'])).stdout.trim());

    // The finished flattened layer tar (the `docker import` floor): the layer of `image flatten --oci`.
    say('preparing (not timed): the finished flattened layer tar');
    const flatOci = path.join(work, 'flat-oci');
    await gf(['image', 'flatten', BENCH_TAG, '--oci', flatOci, '--tmp-dir', work]);
    const floorLayer = path.join(work, 'floor-layer.tar');
    const blobs = path.join(flatOci, 'blobs', 'sha256');
    const biggest = fs.readdirSync(blobs).map((b) => path.join(blobs, b)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
    fs.renameSync(biggest, floorLayer);
    fs.rmSync(flatOci, { recursive: true, force: true });

    const { syncImages } = await import('../../release/image-sync/index.ts');
    process.env.GRIDFORGE_QUIET = '1';
    let n = 0;
    const fresh = async () => { const r = path.join(work, `repo-${++n}`); await initRepo(r); await settle(); return r; };
    const peer: Record<'skopeo' | 'umoci' | 'publish', number[]> = { skopeo: [], umoci: [], publish: [] };
    type Timing = { s: number; cpu?: number };
    const cliOnly = (x: Sample): Timing => ({ s: x.s, cpu: x.cpu });
    const unchanged = (x: Sample): Timing => {
      if (!/nothing changed/.test(x.stdout)) throw new Error(`resync changed something: ${x.stdout.slice(-500)}`);
      return cliOnly(x);
    };
    // `docker ...` rows: the work happens in dockerd, not in a child of ours, so no CPU column
    const engine = async (x: () => Promise<Sample>, rmi: string): Promise<Timing> => { await settle(); const r = await x(); await execa('docker', ['rmi', rmi], { reject: false }); return { s: r.s }; };
    const methods: Record<string, () => Promise<Timing>> = {
      'image sync (registry, 1 entry) -> fresh repo': async () => cliOnly(await gf(['image', 'sync', one, '--repo', await fresh(), '--tmp-dir', work])),
      'image sandbox <docker-archive> --repo': async () => cliOnly(await gf(['image', 'sandbox', archive, '--repo', await fresh(), '--path', TREE_PATH, '--tmp-dir', work])),
      'peers: skopeo copy + umoci unpack + repo publish': async () => {
        const r = await fresh();
        const oci = path.join(work, `peer-oci-${n}`);
        const bundle = path.join(work, `peer-bundle-${n}`);
        const a = await timed('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg!.host}/job:v1`, `oci:${oci}:v1`]);
        const b = await timed('umoci', ['unpack', '--rootless', '--image', `${oci}:v1`, bundle]);
        const c = await gf(['repo', 'publish', r, path.join(bundle, 'rootfs'), '--path', TREE_PATH]);
        peer.skopeo.push(a.s); peer.umoci.push(b.s); peer.publish.push(c.s);
        return { s: a.s + b.s + c.s, cpu: a.cpu + b.cpu + c.cpu };
      },
      [`resync, ${ENTRIES} entries, nothing changed (CLI)`]: async () => unchanged(await gf(['image', 'sync', hundred, '--repo', repo100, '--tmp-dir', work])),
      [`resync, ${ENTRIES} entries, nothing changed (CLI, sources through tsx)`]: async () => unchanged(await gfTsx(['image', 'sync', hundred, '--repo', repo100, '--tmp-dir', work])),
      [`resync, ${ENTRIES} entries, nothing changed (syncImages in process)`]: async () => {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        const r = await syncImages({ wishList: hundred, repo: repo100, tmpDir: work });
        if (r.revision !== undefined || r.plan.unchanged.length !== SMALL_REPOS) throw new Error('in-process resync changed something');
        const c = process.cpuUsage(c0);
        return { s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6 };
      },
      'image flatten <engine ref> (engine -> engine)': async () => engine(() => gf(['image', 'flatten', BENCH_TAG, '--tag', FLAT_TAG, '--tmp-dir', work]), FLAT_TAG),
      'docker import of the finished flattened layer tar': async () => engine(() => timed('docker', ['import', floorLayer, FLOOR_TAG]), FLOOR_TAG),
      'docker export | docker import': async () => {
        const c = `gfsync-bench-exp-${process.pid}`;
        return engine(() => timed('sh', ['-c', `docker create --name ${c} ${BENCH_TAG} /x >/dev/null && docker export ${c} | docker import - ${EXPORT_TAG} >/dev/null; rc=$?; docker rm -f ${c} >/dev/null; exit $rc`]), EXPORT_TAG);
      },
    };
    const samples: Record<string, Timing[]> = Object.fromEntries(Object.keys(methods).map((k) => [k, []]));
    for (let r = 0; r < runs; r++) {
      // sync and the archive take turns going first, so neither always follows the same method
      const order = Object.entries(methods);
      if (r % 2 === 1) [order[0], order[1]] = [order[1], order[0]];
      for (const [name, fn] of order) {
        if (name.startsWith('resync')) await settle(); // the other rows settle in fresh()/engine()
        const t = await fn();
        samples[name].push(t);
        say(`run ${r + 1}/${runs}  ${name}: ${t.s.toFixed(2)} s${t.cpu !== undefined ? `, CPU ${t.cpu.toFixed(2)} s` : ''} (load ${os.loadavg()[0].toFixed(1)})`);
      }
    }
    const med = (k: string) => median(samples[k].map((t) => t.s));
    const medCpu = (k: string) => (samples[k][0].cpu === undefined ? '-' : median(samples[k].map((t) => t.cpu!)).toFixed(2));
    const keys = Object.keys(methods);
    const best = (k: string) => Math.min(...samples[k].map((t) => t.s));
    const rows = keys.map((k) => [k, med(k).toFixed(2), best(k).toFixed(2), samples[k].map((t) => t.s.toFixed(2)).join(' '), medCpu(k)]);
    const mode = buildStillCurrent() ? 'compiled build of a private copy of the sources' : 'private copy, but its build went STALE during the runs';
    console.log(`\n${job.ref}: ${inspect.RootFS.Layers.length} layer(s), ${(inspect.Size / 1e6).toFixed(0)} MB, ${files} paths; in the registry ${(regBytes / 1e6).toFixed(0)} MB (gzip); ${runs} runs; ${os.cpus().length} cores; load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; CLI runs the ${mode}; every timed run started on a quiet machine (quiet.ts)${notQuiet ? ` except ${notQuiet} that waited 30 s in vain` : ''}\n`);
    console.log(formatTable(['method', 'median s', 'fastest s', 'runs (s)', 'median CPU s (user+sys)'], rows));
    console.log(`\npeers' stages (medians): skopeo copy ${median(peer.skopeo).toFixed(2)} s, umoci unpack ${median(peer.umoci).toFixed(2)} s, repo publish ${median(peer.publish).toFixed(2)} s`);
    const [syncK, archK, peerK, cliK, tsxK, libK, flatK, floorK, expK] = keys;
    const ratio = (a: string, b: string) => med(a) / med(b);
    console.log('');
    console.log(formatTable(['ratio', 'value', 'target'], [
      ['image sync / image sandbox <archive> --repo', ratio(syncK, archK).toFixed(2), '<= 1.2'],
      ['the same, fastest runs (the least disturbed by others)', (best(syncK) / best(archK)).toFixed(2), '(info)'],
      ['the same, CPU time (user+sys; less sensitive to the load of others)', (Number(medCpu(syncK)) / Number(medCpu(archK))).toFixed(2), '(info)'],
      ['peers (skopeo + umoci + publish) / image sync', ratio(peerK, syncK).toFixed(2), '(info)'],
      [`resync of ${ENTRIES} entries, CLI (s per 100 entries)`, (med(cliK) * 100 / ENTRIES).toFixed(2), '<= 1 s'],
      [`resync of ${ENTRIES} entries, CLI through tsx (s per 100 entries)`, (med(tsxK) * 100 / ENTRIES).toFixed(2), '(info)'],
      [`resync of ${ENTRIES} entries, in process (s per 100 entries)`, (med(libK) * 100 / ENTRIES).toFixed(2), '(info)'],
      ['image flatten (engine) / docker import of the finished layer', ratio(flatK, floorK).toFixed(2), '<= 1.15'],
      ['the same, fastest runs', (best(flatK) / best(floorK)).toFixed(2), '(info)'],
      ['image flatten (engine) / docker export | docker import', ratio(flatK, expK).toFixed(2), '(info)'],
    ]));
    const met = (ok: boolean) => (ok ? 'MET' : 'MISSED');
    console.log(`\ntargets: sync <= 1.2x archive: ${ratio(syncK, archK).toFixed(2)} ${met(ratio(syncK, archK) <= 1.2)}; resync <= 1 s per 100 entries (CLI): ${(med(cliK) * 100 / ENTRIES).toFixed(2)} s ${met(med(cliK) * 100 / ENTRIES <= 1)}; flatten <= 1.15x docker import: ${ratio(flatK, floorK).toFixed(2)} ${met(ratio(flatK, floorK) <= 1.15)}`);
  } finally {
    await reg?.stop().catch(() => undefined);
    await execa('docker', ['rmi', ...tags, ...(built && !keep ? [built] : [])], { reject: false });
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
    else say(`kept ${work}`);
  }
}

await main();
