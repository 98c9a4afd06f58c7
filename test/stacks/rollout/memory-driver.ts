/**
 * An in-memory SiteDriver for the fast orchestration tests (planner, record, resume, locks). The
 * real-host suite (rollout-hosts.test.ts) uses the production driver on real test hosts.
 * Sites are described by tiny YAML files (`site:`, `host.address`); their state lives in a Map.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { SiteOperationError, type OperationOptions, type SiteDescriptor, type SiteDriver, type SiteObservation } from '../../../stacks/rollout/driver.ts';
import type { Previous, Target } from '../../../stacks/rollout/types.ts';
import { UsageError } from '../../../base/errors.ts';

export interface MemorySite {
  image: string | null;
  jalienVersion: string | null;
  healthy: boolean;
  startedAt: number;
  /** How many times a container was (re)created here, by deploy or restore. */
  creations: number;
}

export type Behaviour = 'ok' | 'unhealthy' | 'throw' | 'throw-restored' | 'unreachable' | 'slow';

export class MemoryDriver implements SiteDriver {
  readonly sites = new Map<string, MemorySite>();
  readonly behaviour = new Map<string, Behaviour>();
  readonly deployLog: { site: string; target: Target; at: number }[] = [];
  readonly restoreLog: { site: string; previous: Previous }[] = [];
  deployMs = 5;
  /** When set, deploy waits for this promise (lock tests). */
  gate: Promise<void> | null = null;

  async describe(file: string): Promise<SiteDescriptor> {
    const doc = load(readFileSync(file, 'utf8')) as { site?: string; host?: { address?: string } } | null;
    if (!doc?.site || !doc.host?.address) throw new UsageError('site file needs site and host.address', { where: file, hint: 'add them' });
    if (!this.sites.has(doc.site)) this.sites.set(doc.site, { image: 'vobox:v1', jalienVersion: '2.1.2-1', healthy: true, startedAt: Date.now(), creations: 1 });
    return { site: doc.site, file, host: `${doc.host.address}:22`, container: `${doc.site}-vobox`, services: ['ce', 'cron'] };
  }

  private async reach(site: SiteDescriptor, opts: OperationOptions): Promise<MemorySite> {
    if (this.behaviour.get(site.site) === 'unreachable') {
      await new Promise((_, reject) => opts.signal.addEventListener('abort', () => reject(new Error('connect aborted')), { once: true }));
    }
    return this.sites.get(site.site)!;
  }

  async observe(site: SiteDescriptor, opts: OperationOptions): Promise<SiteObservation> {
    const s = await this.reach(site, opts);
    return {
      image: s.image,
      jalienVersion: s.jalienVersion,
      uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
      services: { ce: s.healthy ? 'RUNNING' : 'FATAL', cron: 'RUNNING' },
      healthy: s.healthy,
    };
  }

  onTarget(_site: SiteDescriptor, o: SiteObservation, t: Target): boolean {
    return (!t.image || o.image === t.image) && (!t.jalienVersion || o.jalienVersion === t.jalienVersion);
  }

  async deploy(site: SiteDescriptor, target: Target, opts: OperationOptions): Promise<void> {
    const s = await this.reach(site, opts);
    this.deployLog.push({ site: site.site, target, at: Date.now() });
    if (this.gate) await this.gate;
    const b = this.behaviour.get(site.site) ?? 'ok';
    await new Promise((r) => setTimeout(r, b === 'slow' ? 10_000 : this.deployMs));
    if (b === 'throw-restored') throw new SiteOperationError('health check failed: ce FATAL (previous container restored)', { logTail: 'ce: exited with status 1\nce: FATAL' });
    if (b === 'throw') {
      s.image = target.image ?? s.image;
      s.healthy = false;
      throw new SiteOperationError('health check failed: ce FATAL', { logTail: 'ce: boom' });
    }
    s.image = target.image ?? s.image;
    s.jalienVersion = target.jalienVersion ?? s.jalienVersion;
    s.healthy = b !== 'unhealthy';
    s.startedAt = Date.now();
    s.creations++;
  }

  async restore(site: SiteDescriptor, previous: Previous, opts: OperationOptions): Promise<void> {
    const s = await this.reach(site, opts);
    this.restoreLog.push({ site: site.site, previous });
    s.image = previous.image;
    s.jalienVersion = previous.jalienVersion;
    s.healthy = true;
    s.startedAt = Date.now();
    s.creations++;
  }

  async logTail(site: SiteDescriptor, service: string): Promise<string> {
    return `${site.site}/${service}: last lines\nFATAL: exited too quickly`;
  }
}

/** Write `n` tiny site files into dir; sites i share host `h<i % hosts>`. */
export function writeSites(dir: string, n: number, hosts: number, prefix = 'SITE'): string[] {
  mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}-${String(i).padStart(3, '0')}`;
    writeFileSync(join(dir, `${name.toLowerCase()}.yaml`), `site: ${name}\nhost:\n  address: 10.0.0.${(i % hosts) + 10}\n`);
    names.push(name);
  }
  return names;
}
