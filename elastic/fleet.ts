/**
 * The elastic column of `gridforge fleet status`: per site file with an `elastic:` block, the nodes
 * that exist right now (from the provider, which is reachable from the operator's machine: the node
 * life log itself lives on the controller, `elastic status` shows it), each with its age.
 */
import { loadSiteSpec } from '../stacks/index.ts';
import { loadPool } from './pool.ts';
import { providerFor } from './providers/index.ts';

export interface FleetElastic { file: string; maxNodes: number; nodes: Array<{ node: string; state: string; createdAt: string }>; error?: string }

export async function fleetElastic(files: string[], timeoutMs = 20_000): Promise<FleetElastic[]> {
  const out: FleetElastic[] = [];
  await Promise.all(
    files.map(async (file) => {
      let spec;
      try {
        spec = loadSiteSpec(file, { checkSiblings: false });
      } catch {
        return; // reported by fleet status itself
      }
      if (!spec.elastic) return;
      try {
        const pool = loadPool(spec);
        const p = providerFor(pool, spec);
        try {
          const list = await Promise.race([p.list(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs).unref())]);
          out.push({ file, maxNodes: pool.maxNodes, nodes: list.map((r) => ({ node: r.node, state: r.state, createdAt: r.createdAt })) });
        } finally {
          p.close();
        }
      } catch (err) {
        out.push({ file, maxNodes: 0, nodes: [], error: (err as Error).message });
      }
    }),
  );
  return out;
}

export function formatFleetElastic(e: FleetElastic | undefined, now = Date.now()): string {
  if (!e) return '-';
  if (e.error) return `? (${e.error.slice(0, 60)})`;
  const ages = e.nodes.map((n) => `${n.node} ${n.state} ${Math.round((now - Date.parse(n.createdAt)) / 1000)}s`);
  return `${e.nodes.length}/${e.maxNodes}${ages.length ? ` (${ages.join(', ')})` : ''}`;
}
