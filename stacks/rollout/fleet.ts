/**
 * Fleet status: every site of an inventory read in parallel (bounded), each under a timeout,
 * so one unreachable host shows up as a row with its error instead of hanging the query.
 */
import type { SiteDriver } from './driver.ts';
import { loadInventory } from './inventory.ts';
import { mapBounded, withTimeout } from './timeout.ts';

export interface FleetRow {
  site: string;
  host: string;
  file: string;
  image: string | null;
  jalienVersion: string | null;
  uptimeSeconds: number | null;
  healthy: boolean;
  services: Record<string, string>;
  /** Set when the site could not be read (unreachable, timeout, auth). */
  error: string | null;
  ms: number;
}

export interface FleetOptions {
  concurrency?: number;
  timeoutMs?: number;
  only?: string[];
  exclude?: string[];
}

export async function fleetStatus(source: string, driver: SiteDriver, opts: FleetOptions = {}): Promise<FleetRow[]> {
  const sites = await loadInventory(source, driver, { only: opts.only, exclude: opts.exclude });
  const ms = opts.timeoutMs ?? 20_000;
  return mapBounded(sites, opts.concurrency ?? 16, async (s): Promise<FleetRow> => {
    const t0 = Date.now();
    const base = { site: s.site, host: s.host, file: s.file };
    try {
      const o = await withTimeout(`reading ${s.site} at ${s.host}`, ms, (signal) => driver.observe(s, { signal, timeoutMs: ms }));
      return { ...base, image: o.image, jalienVersion: o.jalienVersion, uptimeSeconds: o.uptimeSeconds, healthy: o.healthy, services: o.services, error: null, ms: Date.now() - t0 };
    } catch (err) {
      return { ...base, image: null, jalienVersion: null, uptimeSeconds: null, healthy: false, services: {}, error: err instanceof Error ? err.message.split('\n')[0] : String(err), ms: Date.now() - t0 };
    }
  });
}
