/**
 * `gridforge elastic status`: per pool node, Slurm's state, the provider's resource and the node's
 * life (created, registered, running a job, idle, removed, with times). Transitions between
 * running and idle are recorded in the life log when status observes them (the programs only see
 * create and remove).
 */
import type { SiteSpec } from '../stacks/index.ts';
import { readLife, record, type LifeRecord } from './life-log.ts';
import type { Pool } from './pool.ts';
import { providerFor } from './providers/index.ts';
import type { NodeResource } from './provider.ts';
import { isBusy, isRegistered, nodeStates } from './slurmctl.ts';

export interface NodeStatus { node: string; address: string; slurm: string; reason: string; resource?: NodeResource; life: LifeRecord[] }

export interface ElasticStatus { site: string; provider: string; maxNodes: number; nodes: NodeStatus[]; live: number }

export async function elasticStatus(spec: SiteSpec, pool: Pool): Promise<ElasticStatus> {
  const provider = providerFor(pool, spec);
  let resources: NodeResource[];
  try {
    resources = await provider.list();
  } finally {
    provider.close();
  }
  const states = await nodeStates(pool).catch(() => new Map());
  const life = readLife(pool);
  const nodes = pool.nodes.map((node, i): NodeStatus => {
    const st = states.get(node);
    const mine = life.filter((l) => l.node === node);
    const last = [...mine].reverse().find((l) => ['running', 'idle', 'registered', 'removed', 'created', 'reaped'].includes(l.event))?.event;
    const s = st?.state ?? '';
    if (isBusy(s) && last !== 'running' && last !== 'removed') mine.push(record(pool, node, 'running', { state: s }));
    else if (isRegistered(s) && !isBusy(s) && last === 'running') mine.push(record(pool, node, 'idle', { state: s }));
    return { node, address: pool.addresses[i], slurm: st?.state ?? 'unknown', reason: st?.reason ?? '', resource: resources.find((r) => r.node === node), life: mine };
  });
  return { site: pool.site, provider: pool.provider, maxNodes: pool.maxNodes, nodes, live: resources.length };
}

export function formatElasticStatus(s: ElasticStatus): string {
  const lines = [`elastic pool of ${s.site}: provider ${s.provider}, ${s.live} of at most ${s.maxNodes} nodes exist`];
  for (const n of s.nodes) {
    const res = n.resource ? `${n.resource.state} ${n.resource.id} on ${n.resource.where}` : 'no resource';
    lines.push(`${n.node.padEnd(8)} ${n.address.padEnd(15)} slurm ${n.slurm}${n.reason ? ` (${n.reason})` : ''}; ${res}`);
    for (const l of n.life.slice(-8)) {
      const { t, event, node: _n, ...rest } = l;
      lines.push(`    ${t} ${event}${Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : ''}`);
    }
  }
  return lines.join('\n');
}
