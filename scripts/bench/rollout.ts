/**
 * Rollout scale benchmark: an inventory of many sites (default 200) spread over real test hosts
 * (test/support/testhost/: own sshd + dockerd each), rolled out through the real deploy engine (stacks/)
 * by the real orchestration. What it reports:
 *   - baseline: the same orchestration with concurrency 1 over a sample of sites (one at a time);
 *   - the full rollout with bounded concurrency: wall time against the sum of the per-site deploy
 *     times (what one-after-the-other would cost), and the speed-up;
 *   - peak RSS of this process while the rollouts run (orchestration + SSH engine), next to the
 *     peak of the small baseline run: memory follows the concurrency, not the inventory size.
 *
 * The VO-boxes are LIGHTWEIGHT stand-ins (a Debian base with a shell that sleeps and stops on
 * SIGTERM as PID 1, and a `supervisorctl` that reports the enabled services RUNNING): 200 full VO-boxes (supervisord,
 * cron, rsyslog, CE each) do not fit next to the other engineers' work on this 2-core machine.
 * Everything else is real: SSH to each host, the Docker API on its dockerd, the MACVLAN network,
 * one container per site with its own IP and MAC, image load per host, health over docker exec.
 *
 *   node --import tsx scripts/bench/rollout.ts [--sites 200] [--hosts 6] [--concurrency 24] [--per-host 4] [--sample 12]
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, createLan, createTestHost, type Lan, type TestHost } from '../../test/support/testhost/index.ts';
import { startRollout, type RolloutRecord } from '../../stacks/rollout/index.ts';
import { createEngineDriver } from '../../stacks/rollout/engine-driver.ts';
import { formatTable } from '../lib/output.ts';

const PREFIX = 'gfrb';
const V1 = 'gfrb/light-vobox:v1';
const V2 = 'gfrb/light-vobox:v2';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const SITES = arg('sites', 200);
const HOSTS = arg('hosts', 6);
const CONCURRENCY = arg('concurrency', 24);
const PER_HOST = arg('per-host', 4);
const SAMPLE = arg('sample', 12);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : 0;
};
const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

class RssSampler {
  peak = 0;
  private timer: NodeJS.Timeout | null = null;
  start(): void {
    this.peak = process.memoryUsage().rss;
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, process.memoryUsage().rss)), 50);
  }
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
    return this.peak;
  }
}

async function buildImages(): Promise<void> {
  const supervisorctl = `#!/bin/sh
# stand-in: every enabled service RUNNING (the bench measures orchestration + SSH + Docker, not supervisord)
[ "$1" = status ] || exit 0
for s in $(echo "\${GRIDFORGE_SERVICES:-cron,rsyslog,sshd}" | tr , ' '); do echo "$s                   RUNNING   pid 1, uptime 0:00:01"; done
`;
  const dir = mkdtempSync(join(tmpdir(), 'gfrb-img-'));
  try {
    writeFileSync(join(dir, 'supervisorctl'), supervisorctl, { mode: 0o755 });
    writeFileSync(join(dir, 'Dockerfile'), `FROM gridforge/base:debian-bookworm\nCOPY supervisorctl /usr/local/bin/supervisorctl\nENTRYPOINT ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep infinity & wait"]\nLABEL org.opencontainers.image.version=1\n`);
    await execa('docker', ['build', '-q', '-t', V1, dir]);
    await execa('docker', ['build', '-q', '-t', V2, '-'], { input: `FROM ${V1}\nLABEL org.opencontainers.image.version=2\n` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeSites(dir: string, lan: Lan, hosts: TestHost[], n: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const h = hosts[i % hosts.length];
    const octet = 20 + i;
    const name = `gfrb-${String(i).padStart(3, '0')}`;
    writeFileSync(
      join(dir, `${name}.yaml`),
      `site: GFRB-${String(i).padStart(3, '0')}
host: { address: ${h.address}, identityFile: ${h.identityFile}, knownHosts: ${h.knownHosts}, connectTimeoutMs: 10000 }
vobox:
  name: ${name}
  image: ${V1}
  hostname: ${name}.gfrb.example.org
  network: { name: gfrbnet, parent: eth0, subnet: ${lan.subnet}, gateway: ${lan.gateway}, ip: ${lan.base}.${octet}, mac: "02:42:0b:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}" }
  services: [cron, rsyslog]
  limits: { nofile: 4096 }
  cvmfs: { repositories: [alice.cern.ch], mount: ${h.cvmfsDir} }
  volumes: { home: ${h.root}/vol/${name}/home, gridSecurity: ${h.root}/vol/${name}/gs }
`,
    );
  }
}

interface RunStats {
  label: string;
  sites: number;
  concurrency: number;
  perHost: number;
  wallMs: number;
  sumMs: number;
  medianMs: number;
  peakRss: number;
  ok: number;
  /** RSS when each wave started (MiB). */
  waveRss: number[];
}

async function run(label: string, sitesDir: string, image: string, o: { concurrency: number; perHost: number; only?: string[] }, recordDir: string): Promise<RunStats> {
  const driver = createEngineDriver();
  const rss = new RssSampler();
  global.gc?.();
  rss.start();
  const t0 = Date.now();
  let record: RolloutRecord;
  const waveRss: number[] = [];
  try {
    ({ record } = await startRollout(
      { inventory: sitesDir, target: { image }, options: { canary: 0, concurrency: o.concurrency, perHost: o.perHost, maxFailures: 1000, only: o.only ?? [], statusTimeoutMs: 60_000, healthTimeoutMs: 120_000, siteTimeoutMs: 600_000 }, driver, recordDir },
      {
        onProgress: (l) => {
          if (!l.startsWith('wave')) return;
          waveRss.push(process.memoryUsage().rss / 1048576);
          process.stderr.write(`  [${label}] ${l.slice(0, 90)} (rss ${waveRss[waveRss.length - 1].toFixed(0)} MiB)\n`);
        },
        pollMs: 500,
      },
    ));
  } finally {
    await driver.close?.();
  }
  const wallMs = Date.now() - t0;
  const peakRss = rss.stop();
  const times = record.sites.map((s) => s.deployMs ?? 0).filter((x) => x > 0);
  const ok = record.sites.filter((s) => s.state === 'done' || s.state === 'unchanged').length;
  const failed = record.sites.filter((s) => s.state !== 'done' && s.state !== 'unchanged');
  if (failed.length) process.stderr.write(`  [${label}] ${failed.length} site(s) not done, e.g. ${failed[0].site}: ${failed[0].state} ${failed[0].error ?? ''}\n`);
  return { label, sites: record.sites.length, concurrency: o.concurrency, perHost: o.perHost, wallMs, sumMs: times.reduce((a, b) => a + b, 0), medianMs: median(times), peakRss, ok, waveRss };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'gfrb-'));
  await cleanupStale(PREFIX).catch(() => {});
  const lan = await createLan(PREFIX);
  try {
    process.stderr.write(`bench rollout: ${SITES} sites over ${HOSTS} test hosts, concurrency ${CONCURRENCY}, ${PER_HOST} per host\n`);
    await buildImages();
    const hosts: TestHost[] = [];
    for (let i = 0; i < HOSTS; i++) hosts.push(await createTestHost(lan, { name: `b${i + 1}` }));
    const sitesDir = join(root, 'sites');
    writeSites(sitesDir, lan, hosts, SITES);
    const recordDir = join(root, 'records');

    // Setup: every site gets v1 (first deploy per host also writes daemon.json, creates the
    // MACVLAN network and loads the image; one VO-box per host at a time for that).
    const setup = await run('setup v1', sitesDir, V1, { concurrency: HOSTS, perHost: 1 }, recordDir);
    // Baseline: the same orchestration one site at a time over a sample (first SAMPLE sites).
    const sample = Array.from({ length: SAMPLE }, (_, i) => `GFRB-${String(i).padStart(3, '0')}`);
    const base = await run('baseline v2, concurrency 1', sitesDir, V2, { concurrency: 1, perHost: 1, only: sample }, recordDir);
    // The rollout: every other site to v2 with bounded concurrency.
    const full = await run(`v2, concurrency ${CONCURRENCY}`, sitesDir, V2, { concurrency: CONCURRENCY, perHost: PER_HOST }, recordDir);

    const rows = [setup, base, full].map((r) => [
      r.label,
      `${r.ok}/${r.sites}`,
      sec(r.wallMs),
      sec(r.sumMs),
      sec(r.medianMs),
      r.wallMs ? `${(r.sumMs / r.wallMs).toFixed(2)}x` : '-',
      mib(r.peakRss),
    ]);
    process.stdout.write(`\n${formatTable(['run', 'ok', 'wall', 'sum of per-site deploys', 'median per site', 'sum/wall', 'peak RSS'], rows)}\n`);
    const seqEstimate = base.medianMs * (full.sites - SAMPLE);
    process.stdout.write(
      `\nfull rollout vs one-at-a-time: wall ${sec(full.wallMs)} vs ${sec(seqEstimate)} estimated from the baseline median (${(seqEstimate / full.wallMs).toFixed(2)}x); ` +
        `peak RSS ${mib(full.peakRss)} for ${full.sites} sites vs ${mib(base.peakRss)} for ${base.sites} (ratio ${(full.peakRss / base.peakRss).toFixed(2)})\n`,
    );
    const w = full.waveRss;
    if (w.length >= 4) {
      const q = Math.floor(w.length / 4);
      process.stdout.write(`RSS at wave starts of the full rollout (${w.length} waves): first quarter median ${median(w.slice(0, q)).toFixed(0)} MiB, last quarter median ${median(w.slice(-q)).toFixed(0)} MiB\n`);
    }
    process.stdout.write(`VO-boxes: lightweight stand-ins (sleep + fake supervisorctl), real SSH/Docker API/MACVLAN per site; machine shared, timings noisy.\n`);
  } finally {
    await lan.destroy().catch((e) => process.stderr.write(`cleanup: ${e}\n`));
    await execa('docker', ['rmi', V2, V1], { reject: false });
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
