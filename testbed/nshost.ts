/**
 * Hosts of the testbed on one machine: a Linux bridge as the site LAN and "hosts" that each have
 * their own network, mount and UTS namespace (the pattern of test/support/testhost/index.ts, which
 * the deploy tests use; the testbed is a product feature, so it has its own copy here).
 *
 * A host is held together by a holder process (`nsenter --net unshare --mount --uts`) that mounts
 * the host's private /run and a tmpfs /cvmfs, sets the hostname and sleeps. Daemons are started by
 * joining the holder's namespaces. Every process of a host lives in the cgroup `/<netns>` of every
 * v1 hierarchy, so `down` finds and kills all of them (slurmd's job steps included) even after the
 * process that started them died. The mounts live only in the holder's mount namespace: they go
 * when its last process does.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { GridforgeError } from '../base/errors.ts';
import { shellQuote as shQuote } from '../base/shell-quote.ts';
import type { HostRecord } from './state.ts';

const CGROUP_V1 = '/sys/fs/cgroup';

export interface ExecResult { stdout: string; stderr: string; code: number }

export async function sh(cmd: string, opts: { reject?: boolean; timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  const r = await execa('sh', ['-c', cmd], { reject: false, timeout: opts.timeoutMs, input: opts.input });
  const res = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), code: r.exitCode ?? 1 };
  if (opts.reject !== false && res.code !== 0) {
    throw new GridforgeError(`testbed: "${cmd.slice(0, 200)}" failed (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(-800)}`);
  }
  return res;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shell prefix that moves the shell (and what it execs) into the cgroup /<name> of every v1 hierarchy. */
export function joinCgroup(name: string): string {
  return `for c in ${CGROUP_V1}/*/; do [ -f "$c/cgroup.procs" ] || continue; mkdir -p "\${c}${name}" 2>/dev/null && echo $$ > "\${c}${name}/cgroup.procs" 2>/dev/null; done; `;
}

/** A /24 not overlapping any route of the machine, derived from the prefix. */
export async function pickSubnet(prefix: string): Promise<string> {
  const routes = (await sh('ip -4 route show table all', { reject: false })).stdout;
  let h = 0;
  for (const c of prefix) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  for (let i = 0; i < 200; i++) {
    const base = `10.${100 + ((h + i * 7) % 150)}.${(h >>> 8) % 250 + i % 5}`;
    if (!routes.includes(`${base}.`)) return base;
  }
  throw new GridforgeError('testbed: no free 10.x.y.0/24 for the site LAN', { hint: 'remove unused routes or bridges' });
}

export async function createBridge(bridge: string, gateway: string): Promise<void> {
  await sh(`ip link add ${bridge} type bridge && ip addr add ${gateway}/24 dev ${bridge} && ip link set ${bridge} up`);
  // Docker sets FORWARD to DROP and bridged frames traverse iptables here: let LAN traffic through.
  await sh(`iptables -I FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`);
}

export async function removeBridge(bridge: string): Promise<void> {
  await sh(`ip link del ${bridge}`, { reject: false });
  while ((await sh(`iptables -D FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`, { reject: false })).code === 0);
}

export interface StartHostOptions {
  root: string;
  bridge: string;
  gateway: string;
  /** extra shell lines run in the holder's mount namespace before it sleeps */
  boot?: string[];
}

/** Create the namespaces of one host and start its holder; returns the holder's pid. */
export async function startHost(h: HostRecord, o: StartHostOptions): Promise<number> {
  mkdirSync(join(o.root, 'run'), { recursive: true });
  await sh(`ip netns add ${h.netns}`);
  await sh(
    `ip link add ${h.veth} type veth peer name eth0 netns ${h.netns} && ip link set ${h.veth} master ${o.bridge} up && ` +
      `ip -n ${h.netns} addr add ${h.address}/24 dev eth0 && ip -n ${h.netns} link set eth0 up && ip -n ${h.netns} link set lo up && ` +
      `ip -n ${h.netns} route add default via ${o.gateway}`,
  );
  const boot = [
    'set -e',
    `mount --bind ${shQuote(join(o.root, 'run'))} /run`,
    'mount -t tmpfs -o mode=0755 testbed-cvmfs /cvmfs',
    `hostname ${h.name}`,
    ...(o.boot ?? []),
    'touch /run/.ready',
    'exec sleep infinity',
  ].join('\n');
  writeFileSync(join(o.root, 'boot.sh'), `${boot}\n`);
  const log = openSync(join(o.root, 'holder.log'), 'a');
  const holder = spawn(
    'sh',
    ['-c', `${joinCgroup(h.netns)} exec nsenter --net=/run/netns/${h.netns} unshare --mount --uts --propagation private sh ${shQuote(join(o.root, 'boot.sh'))}`],
    { detached: true, stdio: ['ignore', log, log] },
  );
  holder.unref();
  closeSync(log);
  const pid = holder.pid ?? 0;
  for (let i = 0; i < 200 && !existsSync(join(o.root, 'run', '.ready')); i++) await sleep(25);
  if (!existsSync(join(o.root, 'run', '.ready'))) {
    throw new GridforgeError(`testbed host ${h.name} did not start: ${readFileSync(join(o.root, 'holder.log'), 'utf8').slice(-1000)}`);
  }
  return pid;
}

/** Run a shell command inside a host (all its namespaces); the processes it starts stay in its cgroup. */
export function hostExec(h: HostRecord, cmd: string, opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  if (!h.holderPid) return Promise.resolve({ stdout: '', stderr: `host ${h.name} has no holder process`, code: 1 });
  return sh(`${joinCgroup(h.netns)} exec nsenter -t ${h.holderPid} -n -m -u sh -c ${shQuote(cmd)}`, { reject: false, ...opts });
}

export async function hostRun(h: HostRecord, cmd: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await hostExec(h, cmd, opts);
  if (r.code !== 0) throw new GridforgeError(`testbed host ${h.name}: "${cmd.slice(0, 160)}" failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-800)}`);
  return r.stdout;
}

/** Every pid in a cgroup directory and the cgroups below it (a cgroup that vanishes meanwhile counts as empty). */
export function pidsIn(cgroupDir: string): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (line.trim()) out.push(Number(line));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      /* vanished */
    }
  };
  walk(cgroupDir);
  return out;
}

/** pids in the host's cgroup (the pids hierarchy). */
export function hostPids(netns: string): number[] {
  const d = join(CGROUP_V1, 'pids', netns);
  return existsSync(d) ? pidsIn(d) : [];
}

function rmdirTree(d: string): void {
  try {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(d, e.name));
    rmdirSync(d);
  } catch {
    /* busy or gone */
  }
}

/** The cgroups named after a host in every v1 hierarchy that still exist. */
export function hostCgroups(netns: string): string[] {
  if (!existsSync(CGROUP_V1)) return [];
  return readdirSync(CGROUP_V1)
    .map((c) => join(CGROUP_V1, c, netns))
    .filter((d) => existsSync(d));
}

/**
 * Kill every process of a host (through its cgroup), remove its cgroups, namespace and link.
 * Returns the pids it killed: a killed daemon leaves the cgroup at once but stays a zombie until
 * its parent (often init) reaps it; `waitReaped` waits for that.
 */
export async function destroyHost(h: Pick<HostRecord, 'netns' | 'veth'>): Promise<number[]> {
  const killed = new Set<number>();
  for (let round = 0; round < 100; round++) {
    const pids = hostPids(h.netns);
    if (pids.length === 0) break;
    for (const p of pids) {
      killed.add(p);
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(50);
  }
  for (let round = 0; round < 40; round++) {
    const dirs = hostCgroups(h.netns);
    if (dirs.length === 0) break;
    dirs.forEach(rmdirTree);
    await sleep(50);
  }
  await sh(`ip netns del ${h.netns}`, { reject: false });
  await sh(`ip link del ${h.veth}`, { reject: false });
  return [...killed];
}

/** Wait (at most `ms`) until none of these pids exists any more, zombies included. */
export async function waitReaped(pids: number[], ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && pids.some((p) => existsSync(`/proc/${p}`))) await sleep(50);
}
