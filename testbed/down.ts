/**
 * `testbed down`: removes everything `testbed up` made, from the state file and, for anything a
 * crash left unrecorded, from the names (every network namespace and cgroup starting with
 * `<prefix>-`, every link `<prefix>br` / `<prefix>h<N>`): processes, namespaces (and with them the
 * mounts), interfaces, the iptables rule, the repository server, the files, and /cvmfs when up made it.
 */
import { existsSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { shellQuote } from '../base/shell-quote.ts';
import { DEFAULT_PREFIX, readState, testbedDir } from './state.ts';
import { destroyHost, hostCgroups, removeBridge, sh, waitReaped } from './nshost.ts';

export interface DownResult { prefix: string; removed: string[] }

export async function destroyTestbed(prefix = process.env.GRIDFORGE_TESTBED_PREFIX ?? DEFAULT_PREFIX): Promise<DownResult> {
  const dir = testbedDir(prefix);
  const state = readState(dir);
  const removed: string[] = [];
  const names = new Set<string>([`${prefix}-serve`]);
  for (const h of state?.hosts ?? []) names.add(h.netns);
  for (const ns of (await sh('ip netns list', { reject: false })).stdout.split('\n').map((l) => l.split(/\s+/)[0])) {
    if (ns && ns.startsWith(`${prefix}-`)) names.add(ns);
  }
  if (existsSync('/sys/fs/cgroup/pids')) for (const n of readdirSync('/sys/fs/cgroup/pids')) if (n.startsWith(`${prefix}-`)) names.add(n);
  const killed: number[] = [];
  const t = Date.now();
  await Promise.all(
    [...names].map(async (n) => {
      const veth = state?.hosts.find((h) => h.netns === n)?.veth ?? '';
      const had = hostCgroups(n).length > 0;
      killed.push(...(await destroyHost({ netns: n, veth: veth || 'none-such' })));
      if (had || veth) removed.push(n);
    }),
  );
  const debug = (what: string) => process.env.GRIDFORGE_TESTBED_DEBUG && process.stderr.write(`down: ${what} after ${Date.now() - t} ms\n`);
  debug(`killed ${killed.length} processes`);
  await waitReaped(killed);
  debug('reaped');
  const links = (await sh('ip -o link show', { reject: false })).stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0])
    .filter((n): n is string => !!n && n.startsWith(prefix) && /^(br|h\d+)$/.test(n.slice(prefix.length)));
  for (const l of links) {
    if (l === `${prefix}br`) await removeBridge(l);
    else await sh(`ip link del ${l}`, { reject: false });
    removed.push(l);
  }
  if (!links.includes(`${prefix}br`)) await removeBridge(`${prefix}br`);
  debug('links removed');
  if (existsSync(dir)) {
    // rm(1) is several times faster than rmSync on the VO-box host's image store.
    await sh(`rm -rf ${shellQuote(dir)}`, { reject: false });
    rmSync(dir, { recursive: true, force: true });
    debug('files removed');
    removed.push(dir);
  }
  // /cvmfs stays while another testbed (another prefix) may still need it as its hosts' mount point.
  const parent = dirname(dir);
  const others = existsSync(parent) && readdirSync(parent).some((p) => existsSync(join(parent, p, 'state.json')));
  if (state?.createdCvmfsDir && !others) {
    try {
      rmdirSync('/cvmfs');
    } catch {
      /* not empty or in use: left alone */
    }
  }
  return { prefix, removed };
}
