/** `testbed status`: which hosts are alive, what Slurm says about the worker nodes, where the repository is. */
import { existsSync } from 'node:fs';
import { hostExec, hostPids } from './nshost.ts';
import { DEFAULT_PREFIX, readState, testbedDir, type TestbedState } from './state.ts';

export interface HostStatus { name: string; role: string; address: string; alive: boolean; processes: number }
export interface StatusResult {
  prefix: string;
  state?: TestbedState;
  hosts: HostStatus[];
  /** `sinfo -N` lines: node and state */
  nodes: { name: string; state: string }[];
  up: boolean;
}

export function isAlive(state: TestbedState): boolean {
  return state.hosts.length > 0 && state.hosts.every((h) => !!h.holderPid && existsSync(`/proc/${h.holderPid}`));
}

export async function testbedStatus(prefix = process.env.GRIDFORGE_TESTBED_PREFIX ?? DEFAULT_PREFIX): Promise<StatusResult> {
  const state = readState(testbedDir(prefix));
  if (!state) return { prefix, hosts: [], nodes: [], up: false };
  const hosts = state.hosts.map((h) => ({ name: h.name, role: h.role, address: h.address, alive: !!h.holderPid && existsSync(`/proc/${h.holderPid}`), processes: hostPids(h.netns).length }));
  const ctl = state.hosts.find((h) => h.role === 'controller');
  let nodes: { name: string; state: string }[] = [];
  if (ctl && state.slurm && hosts.find((h) => h.name === ctl.name)?.alive) {
    const r = await hostExec(ctl, `SLURM_CONF=${state.slurm.conf} sinfo -h -N -o '%N %T'`, { timeoutMs: 10_000 });
    nodes = r.stdout.trim().split('\n').filter(Boolean).map((l) => { const [name, st] = l.split(/\s+/); return { name, state: st }; });
  }
  return { prefix, state, hosts, nodes, up: state.phase === 'up' && isAlive(state) };
}
