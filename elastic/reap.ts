/**
 * `gridforge elastic reap`: removes provider resources that should not exist (AliEC2's zombie VMs):
 * a node Slurm does not know (or not in the pool), a node Slurm holds powered down (its suspend or
 * resume was lost, e.g. the resume program was killed mid-creation), and a node that did not
 * register within ResumeTimeout or that Slurm marked DOWN. A node younger than ResumeTimeout that
 * is still powering up is left alone (its resume program is working on it).
 */
import type { SiteSpec } from '../stacks/index.ts';
import { record } from './life-log.ts';
import type { Pool } from './pool.ts';
import { providerFor } from './providers/index.ts';
import { isPoweredDown, jobsOn, nodeStates, releaseJobs, releaseRequeued } from './slurmctl.ts';

export interface ReapResult { node: string; id: string; reason: string; removed: boolean }

export function zombieReason(pool: Pool, r: { node: string; createdAt: string }, state: string | undefined, now = Date.now()): string | null {
  if (!pool.nodes.includes(r.node)) return `node ${r.node} is not in the pool`;
  if (state === undefined) return `Slurm does not know node ${r.node}`;
  const age = (now - Date.parse(r.createdAt)) / 1000;
  if (/POWERING_UP/.test(state) || /NOT_RESPONDING/.test(state)) return age > pool.slurm.resumeTimeout ? `not registered within ResumeTimeout ${pool.slurm.resumeTimeout} s (Slurm: ${state})` : null;
  if (/DOWN/.test(state) && !/POWERED_DOWN/.test(state)) return `Slurm marked ${r.node} DOWN (${state})`;
  if (isPoweredDown(state)) return `Slurm holds ${r.node} powered down (${state})`;
  return null;
}

export async function reap(spec: SiteSpec, pool: Pool): Promise<ReapResult[]> {
  const provider = providerFor(pool, spec);
  try {
    const [resources, states] = await Promise.all([provider.list(), nodeStates(pool)]);
    const out: ReapResult[] = [];
    for (const r of resources) {
      const reason = zombieReason(pool, r, states.get(r.node)?.state);
      if (!reason) continue;
      const jobs = await jobsOn(pool, r.node).catch(() => [] as string[]);
      const removed = await provider.destroy(r.node);
      // jobs requeued off a node that never came up start on other nodes now, not ~120 s later
      const released = await releaseJobs(pool, jobs);
      record(pool, r.node, 'reaped', { id: r.id, reason, released });
      out.push({ node: r.node, id: r.id, reason, removed });
    }
    if (out.length) await releaseRequeued(pool); // those Slurm requeued before this run
    return out;
  } finally {
    provider.close();
  }
}
