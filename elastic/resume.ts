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
import { isRegistered, jobsOn, markDown, nodeStates, releaseJobs, setAddress } from './slurmctl.ts';
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
  // from the moment Slurm called the program (the wrapper's GRIDFORGE_ELASTIC_T0), else from now
  const t0 = Number(process.env.GRIDFORGE_ELASTIC_T0) || Date.now();
  const address = pool.addresses[nodeIndex(pool, node)];
  record(pool, node, 'resume', { address, pid: process.pid });
  try {
    // the address first: a node slurmctld only knows by name makes it stall in getaddrinfo()
    await setAddress(pool, node, address);
    const fault = readFault(pool, node);
    const c = await provider.create({ node, address, ...(fault === 'no-register' ? { fault } : {}) });
    if (fault === 'fail-start') {
      await provider.destroy(node);
      throw new Error('fault fail-start: the container was made to fail after start');
    }
    const createSeconds = (Date.now() - t0) / 1000;
    record(pool, node, 'created', { address: c.address, id: c.id, where: c.where, seconds: createSeconds });
    if (c.address !== address) await setAddress(pool, node, c.address);
    return { node, ok: true, address: c.address, createSeconds, t0 };
  } catch (err) {
    const error = (err as Error).message;
    await provider.destroy(node).catch(() => {});
    record(pool, node, 'failed', { error });
    // DOWN requeues the node's jobs (with Slurm's ~120 s hold-off, lifted here: they never ran)
    const jobs = await jobsOn(pool, node).catch(() => [] as string[]);
    await markDown(pool, node, `gridforge elastic resume failed: ${error}`).then(
      async () => record(pool, node, 'marked-down', { reason: error, released: await releaseJobs(pool, jobs) }),
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
