/**
 * `testbed up --elastic N`: the testbed's site as an elastic site (elastic/README.md). The site file
 * gets an `elastic:` pool of at most N nodes (containers on the VO-box host's dockerd, on the VO-box's
 * MACVLAN network, addresses .60..), slurm.conf gets the pool's cloud nodes and programs (the
 * fragment of `gridforge render slurm-elastic`), and the wrappers slurmctld runs are installed.
 * The containers live in the VO-box host's cgroup, so `testbed down` removes them with the host.
 */
import { join } from 'node:path';
import { hostlistExpr, installPrograms, loadPool, renderSlurmElastic, WORKER_NODE_IMAGE } from '../elastic/index.ts';
import { writeSiteFile } from './site-file.ts';
import type { TestbedState } from './state.ts';

export interface ElasticUpOptions { maxNodes: number; suspendTime?: number; resumeTimeout?: number; image?: string; cpus?: number }

export function elasticBlock(state: TestbedState, o: ElasticUpOptions): Record<string, unknown> {
  const base = state.gateway!.replace(/\.1$/, '');
  return {
    provider: 'docker-ssh',
    image: o.image ?? WORKER_NODE_IMAGE,
    cpus: o.cpus ?? 1,
    memoryMb: 500,
    maxNodes: o.maxNodes,
    nodePrefix: 'el',
    network: { addresses: `${base}.60-${base}.${60 + Math.max(o.maxNodes, 10) - 1}` },
    controller: `${base}.10:6817`,
    mungeKey: state.slurm!.mungeKey,
    cvmfs: '/cvmfs',
    stateDir: join(state.dir, 'elastic'),
    slurm: { conf: state.slurm!.conf, suspendTime: o.suspendTime ?? 15, resumeTimeout: o.resumeTimeout ?? 60, suspendTimeout: 10, resumeRate: 0, suspendRate: 0 },
  };
}

/** The cloud part of slurm.conf for the testbed's pool; writes the site file (rewritten by the VO-box deploy) and the wrappers. */
export function elasticSlurm(state: TestbedState, repoName: string, image: string): { fragment: string; nodes: string } {
  const spec = writeSiteFile(state, { repoName, image });
  const pool = loadPool(spec);
  installPrograms(pool);
  return { fragment: renderSlurmElastic(pool), nodes: hostlistExpr(pool) };
}

/** After the VO-box deploy: the worker-node image loaded into the VO-box host's engine (so the first resume is quick). */
export async function elasticPrepare(state: TestbedState): Promise<string[]> {
  const { loadSiteSpec } = await import('../stacks/index.ts');
  const { providerFor } = await import('../elastic/index.ts');
  const spec = loadSiteSpec(join(state.dir, 'site.yaml'), { checkSiblings: false });
  const p = providerFor(loadPool(spec), spec);
  try {
    return await p.prepare();
  } finally {
    p.close();
  }
}
