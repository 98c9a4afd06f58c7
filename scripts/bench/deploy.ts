/**
 * Benchmark: bare test host -> healthy VO-box, and the no-op re-run, as medians of N runs.
 * Baseline in the same invocation: the hand-made equivalent with OpenSSH and the docker CLI on the
 * host (`docker save | ssh host docker load`, `docker network create`, `docker run`), without host
 * configuration or health wait; and for the no-op, one `ssh host docker inspect` round trip.
 *
 *   node --import tsx scripts/bench/deploy.ts [--runs 3] [--image <ref>]
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { formatTable } from '../lib/output.ts';
import { cleanupStale, createLan, createTestHost, type Lan, type TestHost } from '../../test/support/testhost/index.ts';
import { deploySite, loadSiteSpec } from '../../stacks/index.ts';

const PREFIX = 'gfdb';
const arg = (n: string, d: string) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const runs = Number(arg('runs', '3'));
const image = arg('image', 'gridforge/vobox-slurm:debian-slurm-0.1.0');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function siteFile(dir: string, lan: Lan, h: TestHost): string {
  const f = join(dir, 'bench.yaml');
  writeFileSync(
    f,
    dump({
      site: 'BENCH',
      host: { address: h.address, identityFile: h.identityFile, hostKey: h.hostKeyFingerprint },
      vobox: {
        name: 'gfdb-vobox',
        image,
        hostname: 'voboxbench.example.org',
        network: { name: 'gfdbnet', parent: 'eth0', subnet: lan.subnet, gateway: lan.gateway, ip: `${lan.base}.50`, mac: '02:42:0a:01:02:40', dns: [lan.gateway] },
        services: ['cron', 'rsyslog', 'sshd'],
        limits: { nofile: 1048576 },
        capabilities: ['NET_ADMIN'],
        cvmfs: { repositories: ['alice.cern.ch'], mount: h.cvmfsDir },
        volumes: { home: join(dir, 'home'), gridSecurity: join(dir, 'gs') },
      },
    }),
  );
  return f;
}

async function baseline(lan: Lan, h: TestHost): Promise<{ full: number; noop: number }> {
  const ssh = `ssh -i ${h.identityFile} -o UserKnownHostsFile=${h.knownHosts} -o BatchMode=yes root@${h.address}`;
  const t0 = Date.now();
  await execa('sh', ['-c', `docker save ${image} | ${ssh} docker load -q`]);
  await execa('sh', ['-c', `${ssh} docker network create -d macvlan --subnet ${lan.subnet} --gateway ${lan.gateway} -o parent=eth0 gfdbnet`]);
  // No --mac-address: client 28 refuses it against this 20.10 daemon (the reason gridforge uses the API).
  await execa('sh', [
    '-c',
    `${ssh} docker run -d --name gfdb-base --network gfdbnet --ip ${lan.base}.60 --hostname voboxbase.example.org --cap-add NET_ADMIN --ulimit nofile=20000:20000 -e GRIDFORGE_SERVICES=cron,rsyslog,sshd -v ${h.cvmfsDir}:/cvmfs:shared --restart unless-stopped ${image}`,
  ]);
  const full = Date.now() - t0;
  const t1 = Date.now();
  await execa('sh', ['-c', `${ssh} docker inspect gfdb-base >/dev/null`]);
  const noop = Date.now() - t1;
  await h.exec('docker rm -f gfdb-base; docker network rm gfdbnet; docker rmi -f $(docker images -q)');
  return { full, noop };
}

async function main() {
  const rows = { baseFull: [] as number[], baseNoop: [] as number[], full: [] as number[], noop: [] as number[] };
  await cleanupStale(PREFIX);
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'gfdb-'));
    const lan = await createLan(PREFIX);
    try {
      const h = await createTestHost(lan, { name: 'h1' });
      const b = await baseline(lan, h);
      rows.baseFull.push(b.full);
      rows.baseNoop.push(b.noop);
      const spec = loadSiteSpec(siteFile(dir, lan, h));
      let t = Date.now();
      const r1 = await deploySite(spec, { yes: true });
      rows.full.push(Date.now() - t);
      if (!r1.health.healthy) throw new Error('bench deploy not healthy');
      t = Date.now();
      const r2 = await deploySite(spec, { yes: true });
      rows.noop.push(Date.now() - t);
      if (r2.changed) throw new Error('no-op re-run changed something');
      process.stderr.write(`run ${i + 1}/${runs}: baseline ${b.full} ms / ${b.noop} ms, gridforge ${rows.full.at(-1)} ms / ${rows.noop.at(-1)} ms\n`);
    } finally {
      await lan.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const fmt = (ms: number) => (ms / 1000).toFixed(2);
  console.log(`deploy benchmark, ${runs} runs, image ${image} (medians, seconds)`);
  console.log(
    formatTable(
      ['case', 'baseline (ssh + docker CLI)', 'gridforge site deploy', 'ratio'],
      [
        ['bare host -> VO-box', fmt(median(rows.baseFull)), fmt(median(rows.full)), (median(rows.full) / median(rows.baseFull)).toFixed(2)],
        ['no-op re-run', fmt(median(rows.baseNoop)), fmt(median(rows.noop)), (median(rows.noop) / median(rows.baseNoop)).toFixed(2)],
      ],
    ),
  );
  console.log('baseline: image load + network + docker run only (no host config, no MAC, no health wait); gridforge: host config, image, container, health wait until every service RUNNING; no-op: full plan + health read');
}

await main();
