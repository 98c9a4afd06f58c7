/**
 * Test hosts on this machine (test/support/testhost/README.md): a Linux bridge as a test LAN, and "hosts" on it that
 * each have their own network namespace + mount namespace (private /etc/docker,
 * /etc/security/limits.d, /run, /var/lib/docker, /var/lib/containerd), their own sshd and their
 * own dockerd, and `eth0` a veth into the LAN bridge. A LAN client is a bare network namespace on
 * the same bridge. Everything is named with the caller's prefix and removed by destroy() or, for
 * leftovers of killed runs, by cleanupStale(prefix).
 *
 * How a host is held together (`ip netns exec` alone would hide the cgroup mounts dockerd needs):
 * a holder process is started with `nsenter --net=/run/netns/<ns> unshare --mount --propagation
 * private`; it bind-mounts the private directories and then sleeps. sshd and dockerd are started by joining the holder's namespaces
 * (`nsenter -t <holder> -n -m`). Every process of a host (holder, sshd, ssh sessions, dockerd,
 * containerd, shims and its containers via --cgroup-parent) lives in the pids cgroup
 * `/<ns>`, so cleanup can find and kill all of them even after the test process died.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, closeSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pidsIn } from '../../../testbed/nshost.ts';

export const TESTHOST_ROOT = '/tmp/gridforge-testhost';
const CGROUP_V1 = '/sys/fs/cgroup';

export interface ExecResult { stdout: string; stderr: string; code: number }

export interface LanClient {
  name: string;
  netns: string;
  address: string;
  exec(cmd: string): Promise<ExecResult>;
}

export interface Lan {
  prefix: string;
  bridge: string;
  subnet: string;
  gateway: string;
  /** The first three octets, e.g. "10.123.45": handy for picking VO-box addresses (use .50-.199). */
  base: string;
  addClient(name: string): Promise<LanClient>;
  destroy(): Promise<void>;
  /** @internal next address octet for hosts/clients */
  nextOctet(): number;
  /** @internal registry of things to destroy with the LAN */
  readonly members: { destroy(): Promise<void> }[];
}

export interface TestHost {
  name: string;
  netns: string;
  address: string;
  sshPort: 22;
  user: 'root';
  identityFile: string;
  hostKeyFingerprint: string;
  knownHosts: string;
  /** Directory of this host's files (bind sources, logs, keys). */
  root: string;
  /** A directory on the host that is a shared mount, usable as the host's /cvmfs. */
  cvmfsDir: string;
  exec(cmd: string): Promise<ExecResult>;
  /** Stop and start this host's dockerd (containers stay up when live-restore is on). */
  restartDockerd(): Promise<void>;
  /** pid of the running dockerd of this host. */
  dockerdPid(): number;
  destroy(): Promise<void>;
}

function validatePrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix)) {
    throw new Error(`test host prefix "${prefix}" must be 2-8 lowercase letters/digits (it names network interfaces, max 15 chars)`);
  }
}

async function sh(cmd: string, opts: { reject?: boolean } = {}): Promise<ExecResult> {
  const r = await execa('sh', ['-c', cmd], { reject: false, all: false });
  const res = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), code: r.exitCode ?? 1 };
  if (opts.reject !== false && res.code !== 0) throw new Error(`testhost: "${cmd}" failed (${res.code}): ${res.stderr || res.stdout}`);
  return res;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

async function linkExists(name: string): Promise<boolean> {
  return (await sh(`ip link show dev ${name}`, { reject: false })).code === 0;
}

/** A /24 for this prefix that does not overlap any route of the machine. */
async function pickSubnet(prefix: string): Promise<string> {
  const routes = (await sh('ip -4 route show table all', { reject: false })).stdout;
  const h = createHash('sha256').update(prefix).digest();
  for (let i = 0; i < 200; i++) {
    const b = 100 + ((h[0] + i * 7) % 150);
    const c = (h[1] + i * 13) % 250;
    const base = `10.${b}.${c}`;
    if (!routes.includes(`${base}.`)) return base;
  }
  throw new Error('testhost: no free 10.x.y.0/24 found');
}

export async function createLan(prefix: string): Promise<Lan> {
  validatePrefix(prefix);
  const bridge = `${prefix}br`;
  if (await linkExists(bridge)) await cleanupStale(prefix);
  const base = await pickSubnet(prefix);
  const gateway = `${base}.1`;
  const subnet = `${base}.0/24`;
  mkdirSync(join(TESTHOST_ROOT, prefix), { recursive: true });
  await sh(`ip link add ${bridge} type bridge && ip addr add ${gateway}/24 dev ${bridge} && ip link set ${bridge} up`);
  // Docker sets FORWARD to DROP and bridged frames traverse iptables here: let LAN traffic through.
  await sh(`iptables -I FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`);
  let octet = 10;
  let clientIndex = 0;
  const members: { destroy(): Promise<void> }[] = [];
  const lan: Lan = {
    prefix,
    bridge,
    subnet,
    gateway,
    base,
    members,
    nextOctet: () => octet++,
    async addClient(name: string): Promise<LanClient> {
      const netns = `${prefix}-c-${name}`;
      const veth = `${prefix}c${clientIndex++}`;
      const address = `${base}.${200 + clientIndex}`;
      await sh(`ip netns add ${netns}`);
      await sh(
        `ip link add ${veth} type veth peer name eth0 netns ${netns} && ip link set ${veth} master ${bridge} up && ` +
          `ip -n ${netns} addr add ${address}/24 dev eth0 && ip -n ${netns} link set eth0 up && ip -n ${netns} link set lo up && ` +
          `ip -n ${netns} route add default via ${gateway}`,
      );
      const client: LanClient = {
        name,
        netns,
        address,
        exec: (cmd: string) => sh(`ip netns exec ${netns} sh -c ${shellQuote(cmd)}`, { reject: false }),
      };
      members.push({ destroy: async () => { await sh(`ip netns del ${netns}`, { reject: false }); } });
      return client;
    },
    async destroy() {
      for (const m of [...members].reverse()) await m.destroy().catch(() => {});
      members.length = 0;
      await sh(`ip link del ${bridge}`, { reject: false });
      while ((await sh(`iptables -D FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`, { reject: false })).code === 0);
      rmSync(join(TESTHOST_ROOT, prefix), { recursive: true, force: true });
    },
  };
  return lan;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const PRIVATE_DIRS: [string, string][] = [
  ['etc-docker', '/etc/docker'],
  ['limits.d', '/etc/security/limits.d'],
  ['run', '/run'],
  ['var-lib-docker', '/var/lib/docker'],
  ['var-lib-containerd', '/var/lib/containerd'],
];

function cgroupDirs(netns: string): string[] {
  if (!existsSync(CGROUP_V1)) return [];
  return readdirSync(CGROUP_V1)
    .map((c) => join(CGROUP_V1, c, netns))
    .filter((d) => existsSync(d));
}

function rmdirTree(d: string): void {
  try {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(d, e.name));
    rmdirSync(d);
  } catch {
    /* busy or gone */
  }
}

/** Kill every process of a host (found through its pids cgroup) and remove its cgroups. */
async function killHostProcesses(netns: string): Promise<void> {
  const pidsCg = join(CGROUP_V1, 'pids', netns);
  for (let round = 0; round < 50; round++) {
    const pids = existsSync(pidsCg) ? pidsIn(pidsCg) : [];
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(100);
  }
  for (let round = 0; round < 20; round++) {
    const dirs = cgroupDirs(netns);
    if (dirs.length === 0) break;
    dirs.forEach(rmdirTree);
    await sleep(100);
  }
}

function shellPrefixForCgroup(netns: string): string {
  // Put the shell (and what it execs) into every v1 hierarchy's /<netns> cgroup.
  return `for c in ${CGROUP_V1}/*/; do [ -f "$c/cgroup.procs" ] || continue; mkdir -p "\${c}${netns}" 2>/dev/null && echo $$ > "\${c}${netns}/cgroup.procs" 2>/dev/null; done; `;
}

export async function createTestHost(lan: Lan, opts: { name: string }): Promise<TestHost> {
  const { name } = opts;
  if (!/^[a-z][a-z0-9-]{0,15}$/.test(name)) throw new Error(`test host name "${name}" must be short lowercase`);
  const netns = `${lan.prefix}-${name}`;
  const root = join(TESTHOST_ROOT, lan.prefix, name);
  const veth = `${lan.prefix}h${lan.members.length}`;
  const octet = lan.nextOctet();
  const address = `${lan.base}.${octet}`;
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const [d] of PRIVATE_DIRS) mkdirSync(join(root, d), { recursive: true });
  mkdirSync(join(root, 'run', 'sshd'), { recursive: true, mode: 0o755 });
  mkdirSync(join(root, 'cvmfs'), { recursive: true });
  writeFileSync(join(root, 'etc-docker', 'daemon.json'), '{}\n');

  let holderPid = 0;
  let dockerd = 0;
  const host: TestHost = {
    name,
    netns,
    address,
    sshPort: 22,
    user: 'root',
    identityFile: join(root, 'id_ed25519'),
    hostKeyFingerprint: '',
    knownHosts: join(root, 'known_hosts'),
    root,
    cvmfsDir: join(root, 'cvmfs'),
    exec: (cmd: string) => sh(`nsenter -t ${holderPid} -n -m sh -c ${shellQuote(cmd)}`, { reject: false }),
    dockerdPid: () => dockerd,
    async restartDockerd() {
      await stopDockerd();
      await startDockerd();
    },
    async destroy() {
      await destroyHost();
    },
  };

  const destroyHost = async () => {
    // Containers first (graceful), then everything in the host's cgroup, then namespace and files.
    if (holderPid && dockerd) {
      await host.exec('ids=$(docker ps -aq); [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1; true').catch(() => {});
    }
    await killHostProcesses(netns);
    await sh(`ip netns del ${netns}`, { reject: false });
    await sh(`ip link del ${veth}`, { reject: false });
    rmSync(root, { recursive: true, force: true });
  };
  lan.members.push({ destroy: destroyHost });

  const startDockerd = async () => {
    const log = openSync(join(root, 'dockerd.log'), 'a');
    const args = [
      '-c',
      `${shellPrefixForCgroup(netns)} exec nsenter -t ${holderPid} -n -m dockerd --data-root /var/lib/docker --exec-root /run/docker ` +
        `--pidfile /run/docker.pid -H unix:///run/docker.sock --config-file /etc/docker/daemon.json ` +
        `--bridge=none --iptables=false --ip-masq=false --userland-proxy=false --cgroup-parent=/${netns}/docker`,
    ];
    const child = spawn('sh', args, { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    closeSync(log);
    dockerd = child.pid ?? 0;
    const sock = join(root, 'run', 'docker.sock');
    for (let i = 0; i < 300; i++) {
      if (existsSync(sock)) {
        const r = await sh(`docker -H unix://${sock} version --format '{{.Server.APIVersion}}'`, { reject: false });
        if (r.code === 0) return;
      }
      await sleep(100);
    }
    throw new Error(`testhost ${name}: dockerd did not come up; log: ${readFileSync(join(root, 'dockerd.log'), 'utf8').slice(-2000)}`);
  };
  const stopDockerd = async () => {
    if (!dockerd) return;
    try {
      process.kill(dockerd, 'SIGTERM');
    } catch {
      dockerd = 0;
      return;
    }
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(dockerd, 0);
      } catch {
        break;
      }
      // reap if it is our child (detached: it is reparented, so just poll /proc)
      if (!existsSync(`/proc/${dockerd}`) || readFileSync(`/proc/${dockerd}/stat`, 'utf8').split(' ')[2] === 'Z') break;
      await sleep(100);
    }
    dockerd = 0;
  };

  try {
    // Keys: the client's identity and the host's host key; authorized_keys and known_hosts.
    await sh(`ssh-keygen -q -t ed25519 -N '' -C gridforge-test -f ${root}/id_ed25519 && ssh-keygen -q -t ed25519 -N '' -C ${name} -f ${root}/ssh_host_ed25519_key`);
    writeFileSync(join(root, 'authorized_keys'), readFileSync(`${root}/id_ed25519.pub`));
    const hostPub = readFileSync(`${root}/ssh_host_ed25519_key.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    writeFileSync(host.knownHosts, `${address} ${hostPub}\n`);
    host.hostKeyFingerprint = (await sh(`ssh-keygen -l -E sha256 -f ${root}/ssh_host_ed25519_key.pub`)).stdout.split(/\s+/)[1];
    writeFileSync(
      join(root, 'sshd_config'),
      [
        `ListenAddress ${address}`,
        `Port 22`,
        `HostKey ${root}/ssh_host_ed25519_key`,
        `PidFile /run/sshd.pid`,
        `PermitRootLogin prohibit-password`,
        `PasswordAuthentication no`,
        `KbdInteractiveAuthentication no`,
        `PubkeyAuthentication yes`,
        `AuthorizedKeysFile ${root}/authorized_keys`,
        `StrictModes no`,
        `UsePAM no`,
        `AllowStreamLocalForwarding yes`,
        `AllowTcpForwarding yes`,
        `MaxSessions 64`,
        `MaxStartups 64`,
        `Subsystem sftp internal-sftp`,
        `AcceptEnv LANG LC_*`,
        '',
      ].join('\n'),
    );

    // Network namespace with eth0 in the LAN.
    await sh(`ip netns add ${netns}`);
    await sh(
      `ip link add ${veth} type veth peer name eth0 netns ${netns} && ip link set ${veth} master ${lan.bridge} up && ` +
        `ip -n ${netns} addr add ${address}/24 dev eth0 && ip -n ${netns} link set eth0 up && ip -n ${netns} link set lo up && ` +
        `ip -n ${netns} route add default via ${lan.gateway}`,
    );

    // Holder: mount namespace with the private views, then sleep forever.
    // Standard paths that may be missing on the machine (e.g. /var/lib/containerd) are created empty.
    const binds = PRIVATE_DIRS.map(([src, dst]) => `mkdir -p ${dst} && mount --bind ${root}/${src} ${dst}`).join(' && ');
    const boot =
      `set -e; ${binds}; mount --bind ${root}/cvmfs ${root}/cvmfs; mount --make-shared ${root}/cvmfs; ` +
      `touch ${root}/run/.ready; exec sleep infinity`;
    writeFileSync(join(root, 'boot.sh'), boot + '\n');
    const hlog = openSync(join(root, 'holder.log'), 'a');
    const holder = spawn(
      'sh',
      ['-c', `${shellPrefixForCgroup(netns)} exec nsenter --net=/run/netns/${netns} unshare --mount --propagation private sh ${root}/boot.sh`],
      { detached: true, stdio: ['ignore', hlog, hlog] },
    );
    holder.unref();
    closeSync(hlog);
    holderPid = holder.pid ?? 0;
    for (let i = 0; i < 100 && !existsSync(join(root, 'run', '.ready')); i++) await sleep(50);
    // .ready is written into the bind source, visible from outside once mounts are done.
    if (!existsSync(join(root, 'run', '.ready'))) throw new Error(`testhost ${name}: holder failed: ${readFileSync(join(root, 'holder.log'), 'utf8')}`);

    await sh(`${shellPrefixForCgroup(netns)} nsenter -t ${holderPid} -n -m /usr/sbin/sshd -f ${root}/sshd_config -E ${root}/sshd.log`);
    await startDockerd();
    for (let i = 0; i < 100; i++) {
      const r = await sh(`ip netns exec ${netns} bash -c 'exec 3<>/dev/tcp/${address}/22' 2>/dev/null`, { reject: false });
      if (r.code === 0) break;
      await sleep(50);
    }
    return host;
  } catch (err) {
    await destroyHost().catch(() => {});
    throw err;
  }
}

/** Remove everything a killed run with this prefix left behind: processes, netns, links, rules, files. */
export async function cleanupStale(prefix: string): Promise<void> {
  validatePrefix(prefix);
  const nss = (await sh('ip netns list', { reject: false })).stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0])
    .filter((n) => n && n.startsWith(`${prefix}-`));
  const cgs = existsSync(join(CGROUP_V1, 'pids'))
    ? readdirSync(join(CGROUP_V1, 'pids')).filter((n) => n.startsWith(`${prefix}-`))
    : [];
  for (const ns of new Set([...nss, ...cgs])) await killHostProcesses(ns);
  for (const ns of nss) await sh(`ip netns del ${ns}`, { reject: false });
  const links = (await sh('ip -o link show', { reject: false })).stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0])
    .filter((n): n is string => !!n && n.startsWith(prefix) && /^[a-z0-9]+$/.test(n.slice(prefix.length)) && /^(br|h\d+|c\d+)$/.test(n.slice(prefix.length)));
  for (const l of links) await sh(`ip link del ${l}`, { reject: false });
  const bridge = `${prefix}br`;
  while ((await sh(`iptables -D FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`, { reject: false })).code === 0);
  const dir = join(TESTHOST_ROOT, prefix);
  if (existsSync(dir) && statSync(dir).isDirectory()) rmSync(dir, { recursive: true, force: true });
}
