/**
 * `gridforge elastic resume <hostlist>`: Slurm's ResumeProgram. Per node, in parallel: create the
 * worker node with the provider on the node's address, tell slurmctld its address, then wait (up
 * to ResumeTimeout) until slurmd registers, so the life log has the time from call to IDLE. A
 * node that cannot be created leaves nothing behind (the provider removes what it made) and is
 * marked DOWN with the reason; the exit code is then 1.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SiteSpec } from '../stacks/index.ts';
import { record } from './life-log.ts';
import { expandHostlist, nodeIndex, type Pool } from './pool.ts';
import { providerFor } from './providers/index.ts';
import { isRegistered, markDown, nodeStates, releaseRequeued, setAddress } from './slurmctl.ts';
import { readFault } from './faults.ts';

export interface ResumeResult { node: string; ok: boolean; address?: string; createSeconds?: number; registeredSeconds?: number; error?: string }

export async function resumeNodes(spec: SiteSpec, pool: Pool, hostlist: string, o: { wait?: boolean } = {}): Promise<ResumeResult[]> {
  const nodes = expandHostlist(hostlist);
  nodes.forEach((n) => nodeIndex(pool, n)); // a name outside the pool: UsageError before anything is made
  const provider = providerFor(pool, spec);
  try {
    const results = await Promise.all(nodes.map((n) => resumeOne(pool, provider, n)));
    if (o.wait !== false) await waitRegistered(pool, results.filter((r) => r.ok));
    return results;
  } finally {
    provider.close();
  }
}

async function resumeOne(pool: Pool, provider: ReturnType<typeof providerFor>, node: string): Promise<ResumeResult & { t0: number }> {
  const t0 = Date.now();
  const address = pool.addresses[nodeIndex(pool, node)];
  record(pool, node, 'resume', { address, pid: process.pid });
  try {
    const fault = readFault(pool, node);
    const c = await provider.create({ node, address, ...(fault === 'no-register' ? { fault } : {}) });
    if (fault === 'fail-start') {
      await provider.destroy(node);
      throw new Error('fault fail-start: the container was made to fail after start');
    }
    const createSeconds = (Date.now() - t0) / 1000;
    record(pool, node, 'created', { address: c.address, id: c.id, where: c.where, seconds: createSeconds });
    await setAddress(pool, node, c.address);
    return { node, ok: true, address: c.address, createSeconds, t0 };
  } catch (err) {
    const error = (err as Error).message;
    await provider.destroy(node).catch(() => {});
    record(pool, node, 'failed', { error });
    await markDown(pool, node, `gridforge elastic resume failed: ${error}`).then(
      async () => record(pool, node, 'marked-down', { reason: error, released: await releaseRequeued(pool) }),
      () => {},
    );
    return { node, ok: false, error, t0 };
  }
}

async function waitRegistered(pool: Pool, rs: Array<ResumeResult & { t0?: number }>): Promise<void> {
  const deadline = Date.now() + pool.slurm.resumeTimeout * 1000;
  const left = new Set(rs.map((r) => r.node));
  while (left.size && Date.now() < deadline) {
    const states = await nodeStates(pool).catch(() => new Map());
    for (const r of rs) {
      if (!left.has(r.node) || !isRegistered(states.get(r.node)?.state ?? '')) continue;
      left.delete(r.node);
      r.registeredSeconds = (Date.now() - (r.t0 ?? Date.now())) / 1000;
      record(pool, r.node, 'registered', { seconds: r.registeredSeconds, state: states.get(r.node)?.state });
    }
    if (left.size) await sleep(250);
  }
}
