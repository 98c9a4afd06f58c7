/**
 * What gridforge asks of the controller: node states (`scontrol -o show node`), node updates
 * (address after create, DOWN with the reason after a failed resume). The programs run on the
 * controller as SlurmUser, so scontrol talks to the local slurmctld; `elastic.slurm.conf` sets
 * SLURM_CONF when the configuration is not in the default place.
 */
import { execa } from 'execa';
import { GridforgeError } from '../base/errors.ts';
import type { Pool } from './pool.ts';

export interface SlurmNodeState { node: string; state: string; reason: string; addr: string }

async function scontrol(pool: Pool, args: string[]): Promise<string> {
  const env = pool.slurm.conf ? { SLURM_CONF: pool.slurm.conf } : {};
  const r = await execa('scontrol', args, { reject: false, env, timeout: 20_000 });
  if (r.exitCode !== 0) throw new GridforgeError(`scontrol ${args.join(' ')} failed: ${String(r.stderr || r.stdout).trim()}`, { where: 'slurmctld', hint: 'is slurmctld up, and SLURM_CONF (elastic.slurm.conf) right?' });
  return String(r.stdout);
}

/** States of the pool's nodes (and every other node Slurm knows), by name. */
export async function nodeStates(pool: Pool): Promise<Map<string, SlurmNodeState>> {
  const out = new Map<string, SlurmNodeState>();
  const text = await scontrol(pool, ['-o', 'show', 'node']);
  for (const line of text.split('\n')) {
    const name = /NodeName=(\S+)/.exec(line)?.[1];
    if (!name) continue;
    out.set(name, { node: name, state: /\bState=(\S+)/.exec(line)?.[1] ?? '?', reason: /\bReason=(.*?)(?: \[|$)/.exec(line)?.[1] ?? '', addr: /\bNodeAddr=(\S+)/.exec(line)?.[1] ?? '' });
  }
  return out;
}

export async function setAddress(pool: Pool, node: string, addr: string): Promise<void> {
  await scontrol(pool, ['update', `NodeName=${node}`, `NodeAddr=${addr}`, `NodeHostname=${node}`]);
}

export async function markDown(pool: Pool, node: string, reason: string): Promise<void> {
  await scontrol(pool, ['update', `NodeName=${node}`, 'State=DOWN', `Reason=${reason.replace(/\s+/g, ' ').slice(0, 200)}`]);
}

/** Registered: slurmd answered (not powering up, not powered down, responding). */
export const isRegistered = (s: string) => !/POWERING_UP|POWERED_DOWN|NOT_RESPONDING|DOWN/.test(s) && /IDLE|ALLOCATED|MIXED|COMPLETING/.test(s);
export const isPoweredDown = (s: string) => /POWERED_DOWN/.test(s) && !/POWERING_UP/.test(s);
export const isBusy = (s: string) => /ALLOCATED|MIXED|COMPLETING/.test(s);

/**
 * Requeued jobs wait with a BeginTime about 120 s ahead (Slurm's hold-off after a requeue). When a
 * node failed to resume, its jobs did not run at all, so they are released at once to start on
 * other nodes: pending jobs with Reason=BeginTime that were requeued (Restarts > 0). Returns their ids.
 */
export async function releaseRequeued(pool: Pool): Promise<string[]> {
  const text = await scontrol(pool, ['-o', 'show', 'job']).catch(() => '');
  const ids = text
    .split('\n')
    .filter((l) => /JobState=PENDING/.test(l) && /Reason=BeginTime/.test(l) && /Restarts=[1-9]/.test(l))
    .map((l) => /JobId=(\d+)/.exec(l)![1]);
  for (const id of ids) await scontrol(pool, ['update', `JobId=${id}`, 'StartTime=now']).catch(() => {});
  return ids;
}

/** Ids of the jobs Slurm has allocated to a node. */
export async function jobsOn(pool: Pool, node: string): Promise<string[]> {
  const text = await scontrol(pool, ['-o', 'show', 'job']).catch(() => '');
  return text.split('\n').filter((l) => new RegExp(`\\bNodeList=${node}\\b`).test(l) && /JobState=(CONFIGURING|RUNNING|PENDING)/.test(l)).map((l) => /JobId=(\d+)/.exec(l)![1]);
}

/** After a node was set DOWN: wait (at most ms) until Slurm requeued these jobs, then release them (StartTime=now). */
export async function releaseJobs(pool: Pool, ids: string[], ms = 5000): Promise<string[]> {
  const deadline = Date.now() + ms;
  const released: string[] = [];
  while (released.length < ids.length && Date.now() < deadline) {
    const text = await scontrol(pool, ['-o', 'show', 'job']).catch(() => '');
    for (const l of text.split('\n')) {
      const id = /JobId=(\d+)/.exec(l)?.[1];
      if (!id || !ids.includes(id) || released.includes(id)) continue;
      if (/JobState=PENDING/.test(l) && /Reason=BeginTime/.test(l)) {
        await scontrol(pool, ['update', `JobId=${id}`, 'StartTime=now']).catch(() => {});
        released.push(id);
      } else if (!/JobState=(CONFIGURING|PENDING)/.test(l)) released.push(id); // gone elsewhere (cancelled, completed)
    }
    if (released.length < ids.length) await new Promise((r) => setTimeout(r, 200));
  }
  return released;
}
