/**
 * A fleet of real VO-boxes for the rollout integration tests: a test LAN, N test hosts (each its
 * own sshd + dockerd, test/support/testhost/), two VO-boxes per host deployed with the real deploy engine from
 * the images engineer's `vobox-slurm` build, site files for them, and one site file pointing at a
 * LAN address where no host answers.
 *
 * CVMFS on the test hosts: each VO-box binds its own directory of the host's shared cvmfs mount;
 * it holds a small stand-in for `alice.cern.ch/bin/alienv` that "publishes" a given set of JAliEn
 * versions (a `jalien` that just stays up), so the real CE start script of the image resolves,
 * loads and reports versions, and fails loudly for a version that is not published at that site.
 */
import { execa } from 'execa';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupStale, createLan, createTestHost, type Lan, type TestHost } from '../../support/testhost/index.ts';

export const PREFIX = 'gfro';
export const IMG_V1 = 'gfro/vobox-slurm:v1';
export const IMG_V2 = 'gfro/vobox-slurm:v2';
export const IMG_BROKEN = 'gfro/vobox-slurm:broken';
export const SERVICES = ['ce', 'cron', 'rsyslog'];
export const JALIEN_OLD = '2.1.3-1';
export const JALIEN_NEW = '2.1.4-1';

export interface FleetSite {
  site: string;
  file: string;
  host: TestHost | null;
  container: string;
  ip: string;
}

export interface Fleet {
  lan: Lan;
  hosts: TestHost[];
  sites: FleetSite[];
  sitesDir: string;
  /** The site whose CVMFS does not have JALIEN_NEW. */
  lagging: string;
  /** The site on an address where nobody answers. */
  gone: string;
  destroy(): Promise<void>;
}

async function sh(cmd: string): Promise<string> {
  const r = await execa('sh', ['-c', cmd], { reject: false });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed (${r.exitCode}): ${r.stderr || r.stdout}`);
  return String(r.stdout);
}

/** Build the VO-box image with the project CLI (last stdout line = ref) and derive v1/v2/broken from it. */
export async function buildImages(cwd: string): Promise<void> {
  const r = await execa('node', ['scripts/bin/gridforge.mjs', 'image', 'build', 'vobox-slurm'], { cwd, reject: false, env: { ...process.env, GRIDFORGE_QUIET: '1' } });
  if (r.exitCode !== 0) throw new Error(`gridforge image build vobox-slurm failed (${r.exitCode}): ${String(r.stderr).slice(-2000)}`);
  const ref = String(r.stdout).trim().split('\n').pop()!.trim();
  await sh(`docker tag ${ref} ${IMG_V1}`);
  // v2: the same VO-box with a new version label (a new image, cheap: no new layer).
  await execa('docker', ['build', '-q', '-t', IMG_V2, '-'], { input: `FROM ${IMG_V1}\nLABEL org.opencontainers.image.version=2.0.0-gfro\n` });
  // broken: a release whose rsyslog program cannot start (supervisord reports FATAL).
  await execa('docker', ['build', '-q', '-t', IMG_BROKEN, '-'], {
    input: `FROM ${IMG_V1}\nRUN sed -i 's|^command=.*|command=/bin/sh -c "echo rsyslogd: cannot open /etc/rsyslog.conf: broken release >\\&2; exit 1"|' /etc/gridforge/services/rsyslog.conf\nLABEL org.opencontainers.image.version=2.0.0-broken\n`,
  });
}

export async function removeImages(): Promise<void> {
  await execa('docker', ['rmi', IMG_BROKEN, IMG_V2, IMG_V1], { reject: false });
}

function writeCvmfs(dir: string, versions: string[]): void {
  const bin = join(dir, 'alice.cern.ch', 'bin');
  mkdirSync(bin, { recursive: true });
  for (const v of versions) {
    const vb = join(dir, 'alice.cern.ch', 'jalien', v, 'bin');
    mkdirSync(vb, { recursive: true });
    writeFileSync(join(vb, 'jalien'), `#!/bin/sh\necho "jalien ${v}: $*"\nexec sleep infinity\n`);
    chmodSync(join(vb, 'jalien'), 0o755);
  }
  const latest = [...versions].sort().pop()!;
  writeFileSync(
    join(bin, 'alienv'),
    `#!/bin/sh
# stand-in for alienv on a test host's CVMFS: versions published here: ${versions.join(' ')}
[ "$1" = printenv ] || { echo "alienv: only printenv is supported here" >&2; exit 1; }
m="$2"; v="\${m#JAliEn}"; v="\${v#/}"; [ -n "$v" ] || v=${latest}
d=/cvmfs/alice.cern.ch/jalien/$v/bin
[ -x "$d/jalien" ] || { echo "ERROR: Unable to locate a modulefile for 'JAliEn/$v'" >&2; exit 1; }
echo "export PATH=$d:\\$PATH; export LOADEDMODULES=JAliEn/$v"
`,
  );
  chmodSync(join(bin, 'alienv'), 0o755);
}

function siteYaml(o: { site: string; host: TestHost | null; address: string; lan: Lan; name: string; ip: string; mac: string; cvmfs: string; volumes: string; keyFile: string; knownHosts: string }): string {
  return `site: ${o.site}
host:
  address: ${o.address}
  port: 22
  user: root
  identityFile: ${o.keyFile}
  knownHosts: ${o.knownHosts}
  connectTimeoutMs: 3000
vobox:
  name: ${o.name}
  image: ${IMG_V1}
  hostname: ${o.name}.gfro.example.org
  network: { name: gfronet, parent: eth0, subnet: ${o.lan.subnet}, gateway: ${o.lan.gateway}, ip: ${o.ip}, mac: "${o.mac}", dns: [${o.lan.gateway}] }
  services: [${SERVICES.join(', ')}]
  limits: { nofile: 16384 }
  capabilities: [NET_ADMIN]
  cvmfs: { repositories: [alice.cern.ch], mount: ${o.cvmfs} }
  jalien: { version: ${JALIEN_OLD} }
  volumes: { home: ${o.volumes}/home, gridSecurity: ${o.volumes}/grid-security }
`;
}

const OWNER = `/tmp/gridforge-testhost/${PREFIX}.owner`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One fleet per machine at a time: a second run of this suite (another engineer, the full suite)
 * waits for the first instead of wiping its hosts with cleanupStale. A dead owner's claim is stale.
 */
export async function claimPrefix(): Promise<void> {
  mkdirSync('/tmp/gridforge-testhost', { recursive: true });
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      const fd = openSync(OWNER, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let pid = 0;
      try {
        pid = Number(readFileSync(OWNER, 'utf8'));
      } catch {
        /* raced */
      }
      if (!pid || !alive(pid) || pid === process.pid) {
        try {
          unlinkSync(OWNER);
        } catch {
          /* raced */
        }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`test prefix ${PREFIX} is held by pid ${pid} for 20 minutes`);
      process.stderr.write(`rollout fleet: waiting for pid ${pid} (another run of this suite) to release ${PREFIX}\n`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

export function releasePrefix(): void {
  try {
    if (Number(readFileSync(OWNER, 'utf8')) === process.pid) unlinkSync(OWNER);
  } catch {
    /* gone */
  }
}

/** Create the LAN (call claimPrefix() first), `hostCount` hosts with `perHost` VO-box site files each, and one unreachable site. */
export async function createFleet(root: string, hostCount: number, perHost: number): Promise<Fleet> {
  await cleanupStale(PREFIX).catch(() => {});
  const lan = await createLan(PREFIX);
  const hosts: TestHost[] = [];
  try {
    for (let i = 0; i < hostCount; i++) hosts.push(await createTestHost(lan, { name: `h${i + 1}` }));
  } catch (err) {
    await lan.destroy().catch(() => {});
    throw err;
  }
  const sitesDir = join(root, 'sites');
  mkdirSync(sitesDir, { recursive: true });
  const sites: FleetSite[] = [];
  let n = 0;
  const lagging = `GFRO-H${hostCount}-B`;
  for (const [hi, host] of hosts.entries()) {
    for (let k = 0; k < perHost; k++) {
      const letter = String.fromCharCode(65 + k);
      const site = `GFRO-H${hi + 1}-${letter}`;
      const name = `gfro-h${hi + 1}${letter.toLowerCase()}`;
      const octet = 50 + n++;
      const ip = `${lan.base}.${octet}`;
      const mac = `02:42:0a:9f:${(hi + 1).toString(16).padStart(2, '0')}:${octet.toString(16).padStart(2, '0')}`;
      const cvmfs = join(host.cvmfsDir, name);
      writeCvmfs(cvmfs, site === lagging ? [JALIEN_OLD] : [JALIEN_OLD, JALIEN_NEW]);
      const file = join(sitesDir, `${site.toLowerCase()}.yaml`);
      writeFileSync(file, siteYaml({ site, host, address: host.address, lan, name, ip, mac, cvmfs, volumes: join(host.root, 'vol', name), keyFile: host.identityFile, knownHosts: host.knownHosts }));
      sites.push({ site, file, host, container: name, ip });
    }
  }
  // A site whose host is down: an address on the LAN where nothing answers.
  const gone = 'GFRO-ZZ-GONE';
  const goneFile = join(sitesDir, 'gfro-zz-gone.yaml');
  const goneAddr = `${lan.base}.99`;
  const kh = join(root, 'gone_known_hosts');
  writeFileSync(kh, `${goneAddr} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n`);
  writeFileSync(goneFile, siteYaml({ site: gone, host: null, address: goneAddr, lan, name: 'gfro-gone', ip: `${lan.base}.98`, mac: '02:42:0a:9f:99:98', cvmfs: '/tmp/gfro-none', volumes: '/tmp/gfro-none', keyFile: hosts[0].identityFile, knownHosts: kh }));
  sites.push({ site: gone, file: goneFile, host: null, container: 'gfro-gone', ip: `${lan.base}.98` });
  return {
    lan,
    hosts,
    sites,
    sitesDir,
    lagging,
    gone,
    async destroy() {
      await lan.destroy();
    },
  };
}

/** `docker inspect` of a VO-box on its test host: image, created, JALIEN_VERSION env. */
export async function inspectVobox(s: FleetSite): Promise<{ image: string; created: string; running: boolean; jalien: string | null } | null> {
  const r = await s.host!.exec(`docker inspect --format '{{.Config.Image}}|{{.Created}}|{{.State.Running}}|{{range .Config.Env}}{{.}} {{end}}' ${s.container}`);
  if (r.code !== 0) return null;
  const [image, created, running, env] = r.stdout.trim().split('|');
  const jal = /JALIEN_VERSION=(\S+)/.exec(env)?.[1] ?? null;
  return { image, created, running: running === 'true', jalien: jal };
}

/** The version the CE reports inside the VO-box (templates/vobox/rootfs/usr/local/bin/gridforge-ce-version). */
export async function ceVersion(s: FleetSite): Promise<string> {
  const r = await s.host!.exec(`docker exec ${s.container} gridforge-ce-version`);
  return r.code === 0 ? r.stdout.trim() : `(exit ${r.code}: ${r.stderr.trim()})`;
}
