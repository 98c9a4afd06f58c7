/**
 * The elastic rows of `gridforge site check`: a pool that cannot work is refused with its fix — the
 * block itself (no image, more nodes than addresses, addresses off the LAN: elastic/pool.ts), each
 * provider host reachable over SSH with a Docker engine, the image and the MACVLAN network there
 * (missing ones are loaded / made by `gridforge elastic prepare` or the first resume: warn).
 */
import { UsageError } from '../base/errors.ts';
import type { SiteSpec } from '../stacks/index.ts';
import { openSession } from '../stacks/session.ts';
import { loadPool, type Pool } from './pool.ts';

export interface CheckRow { check: string; status: 'pass' | 'warn' | 'fail'; detail: string; fix?: string }

export async function checkPool(spec: SiteSpec): Promise<CheckRow[]> {
  let pool: Pool;
  try {
    pool = loadPool(spec);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return [{ check: 'elastic pool', status: 'fail', detail: `${err.where ? `${err.where}: ` : ''}${err.message}`, fix: err.hint }];
  }
  const rows: CheckRow[] = [{ check: 'elastic pool', status: 'pass', detail: `${pool.maxNodes} nodes ${pool.nodes[0]}.. on ${pool.addresses[0]}..${pool.addresses.at(-1)}, ${pool.cpus} CPUs / ${pool.memoryMb} MB each, provider ${pool.provider}` }];
  for (const h of pool.hostsResolved) {
    const label = `${h.user}@${h.address}:${h.port}`;
    let s;
    try {
      s = await openSession({ ...spec, host: { ...spec.host, ...h, agent: undefined, keepAliveIntervalMs: 5000 } } as SiteSpec);
    } catch (err) {
      rows.push({ check: `elastic host ${label}`, status: 'fail', detail: `unreachable: ${(err as Error).message}`, fix: 'make the provider host reachable over SSH with a Docker engine (elastic.hosts, or the site host), or remove it from elastic.hosts' });
      continue;
    }
    try {
      rows.push({ check: `elastic host ${label}`, status: 'pass', detail: `Docker ${s.api.serverVersion}` });
      const img = await s.docker.inspectImage(pool.image);
      rows.push(img ? { check: 'elastic image', status: 'pass', detail: `${pool.image} on ${label}` } : { check: 'elastic image', status: 'warn', detail: `${pool.image} not on ${label} yet`, fix: 'gridforge elastic prepare --site <file> loads it (else the first resume does, slowly)' });
      const net = await s.docker.inspectNetwork(pool.networkName);
      rows.push(net ? { check: 'elastic network', status: net.Driver === 'macvlan' ? 'pass' : 'fail', detail: `${pool.networkName} (${net.Driver}) on ${label}`, ...(net.Driver === 'macvlan' ? {} : { fix: `elastic.network.name must be a MACVLAN network; ${pool.networkName} is ${net.Driver}` }) } : { check: 'elastic network', status: 'warn', detail: `${pool.networkName} not on ${label} yet`, fix: 'gridforge site deploy or gridforge elastic prepare makes it' });
    } finally {
      s.close();
    }
  }
  return rows;
}
