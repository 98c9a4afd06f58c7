/**
 * `gridforge elastic suspend <hostlist>`: Slurm's SuspendProgram, called after a node was idle for
 * SuspendTime. Removes each node's resources with the provider; the life log records when the
 * node went idle (now - SuspendTime, as Slurm counts it) and when it was removed.
 */
import type { SiteSpec } from '../stacks/index.ts';
import { record } from './life-log.ts';
import { expandHostlist, nodeIndex, type Pool } from './pool.ts';
import { providerFor } from './providers/index.ts';

export interface SuspendResult { node: string; removed: boolean; error?: string }

export async function suspendNodes(spec: SiteSpec, pool: Pool, hostlist: string): Promise<SuspendResult[]> {
  const nodes = expandHostlist(hostlist);
  nodes.forEach((n) => nodeIndex(pool, n));
  const provider = providerFor(pool, spec);
  try {
    return await Promise.all(
      nodes.map(async (node) => {
        record(pool, node, 'suspend', { idleSince: new Date(Date.now() - pool.slurm.suspendTime * 1000).toISOString() });
        try {
          const removed = await provider.destroy(node);
          record(pool, node, 'removed', { had: removed });
          return { node, removed };
        } catch (err) {
          record(pool, node, 'failed', { error: `suspend: ${(err as Error).message}` });
          return { node, removed: false, error: (err as Error).message };
        }
      }),
    );
  } finally {
    provider.close();
  }
}
