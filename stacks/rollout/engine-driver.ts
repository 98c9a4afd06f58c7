/**
 * The production SiteDriver: wraps the site deploy engine (stacks/index.ts).
 * - describe: loadSiteSpec (zod; exit 2 naming key + fix) -> site, host, container, services;
 * - observe:  siteStatus(spec) -> image, JAliEn version the CE reports, uptime, services, health;
 * - deploy:   deploySite(spec, { overrides: { image, jalienVersion }, yes: true, healthTimeoutMs,
 *             signal }) (the engine waits for supervisord health and restores the previous
 *             container itself when health fails; the operation's signal stops it at the deadline);
 * - restore:  deploySite with the previous image / JAliEn version as overrides.
 * Connection failures are reported as SiteOperationError({ unreachable: true }).
 */
import { GridforgeError } from '../../base/errors.ts';
import { deploySite, destroySite, loadSiteSpec, siteStatus, type SiteSpec, type SiteStatus } from '../index.ts';
import { archiveImageInfo } from '../deploy-image.ts';
import { SiteOperationError, type OperationOptions, type SiteDescriptor, type SiteDriver, type SiteObservation } from './driver.ts';
import type { Previous, Target } from './types.ts';

const UNREACHABLE = /cannot reach|timed out|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|connection .*closed|authentication refused|host key/i;

function toSiteError(err: unknown): SiteOperationError {
  if (err instanceof SiteOperationError) return err;
  const e = err as GridforgeError & { logTail?: string };
  const msg = err instanceof Error ? err.message : String(err);
  const logTail = e?.logTail ?? e?.detail;
  return new SiteOperationError(msg, { logTail: typeof logTail === 'string' ? logTail : undefined, unreachable: UNREACHABLE.test(msg), cause: err });
}

/** Seconds since an ISO start time (or a number of seconds). */
function uptimeSeconds(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.max(0, Math.round(v));
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return Math.max(0, Math.round((Date.now() - t) / 1000));
    const n = Number(v);
    if (Number.isFinite(n)) return Math.round(n);
  }
  return null;
}

export class EngineDriver implements SiteDriver {
  private readonly specs = new Map<string, SiteSpec>();

  private spec(site: SiteDescriptor): SiteSpec {
    const s = this.specs.get(site.file);
    if (s) return s;
    const loaded = loadSiteSpec(site.file, { checkSiblings: false });
    this.specs.set(site.file, loaded);
    return loaded;
  }

  async describe(file: string): Promise<SiteDescriptor> {
    // Siblings (duplicate name/IP/MAC on one host) are checked by the deploy engine per file; the
    // rollout reads many files, so it skips the O(n^2) sibling scan here.
    const spec = loadSiteSpec(file, { checkSiblings: false });
    this.specs.set(spec.file ?? file, spec);
    return {
      site: spec.site,
      file: spec.file ?? file,
      host: `${spec.host.address}:${spec.host.port}`,
      container: spec.vobox.name,
      services: [...spec.vobox.services],
    };
  }

  /** The spec with the site's SSH connect timeout bounded by the operation's budget. */
  private bounded(site: SiteDescriptor, opts: OperationOptions): SiteSpec {
    const spec = this.spec(site);
    const connect = Math.max(1000, Math.min(spec.host.connectTimeoutMs, opts.timeoutMs));
    return connect === spec.host.connectTimeoutMs ? spec : { ...spec, host: { ...spec.host, connectTimeoutMs: connect } };
  }

  async observe(site: SiteDescriptor, opts: OperationOptions): Promise<SiteObservation> {
    let st: SiteStatus;
    try {
      st = await siteStatus(this.bounded(site, opts));
    } catch (err) {
      throw toSiteError(err);
    }
    return {
      image: st.image,
      imageId: st.imageId,
      jalienVersion: st.jalienVersion,
      uptimeSeconds: st.uptime ?? uptimeSeconds(st.startedAt),
      services: st.services,
      healthy: st.healthy && st.running && st.image !== null,
    };
  }

  /** Image IDs of local archives given as --image (the container then runs the image by ID). */
  private readonly archiveIds = new Map<string, string>();

  onTarget(_site: SiteDescriptor, o: SiteObservation, t: Target): boolean {
    let imageOk = true;
    if (t.image) {
      const archiveId = this.archiveIds.get(t.image);
      imageOk = o.image === t.image || (archiveId !== undefined && (o.imageId === archiveId || o.image === archiveId));
    }
    return imageOk && (!t.jalienVersion || o.jalienVersion === t.jalienVersion);
  }

  /** Resolve a local archive's image ID once, before the first deploy (so onTarget can match it). */
  private async learnArchive(image: string): Promise<void> {
    if (this.archiveIds.has(image) || !(image.startsWith('/') && /\.(tar|tar\.gz|tgz)$/.test(image))) return;
    this.archiveIds.set(image, (await archiveImageInfo(image)).id);
  }

  private async apply(site: SiteDescriptor, overrides: { image?: string; jalienVersion?: string }, opts: OperationOptions): Promise<void> {
    try {
      await deploySite(this.bounded(site, opts), {
        overrides,
        yes: true,
        healthTimeoutMs: Math.max(5000, opts.timeoutMs - 5000),
        signal: opts.signal, // the rollout's deadline stops the deploy, so a restore never races it
        onProgress: (line) => opts.onProgress?.(line),
      });
    } catch (err) {
      throw toSiteError(err);
    }
  }

  /**
   * The overrides for the deploy engine: the rollout's target, and for what the rollout does not
   * change, what the site runs now when that differs from its site file (a JAliEn rollout keeps the
   * image an earlier image rollout put there; an image rollout keeps a JAliEn version an earlier
   * JAliEn rollout pinned, when the site file pins one). Rollouts do not edit site files.
   */
  private overrides(site: SiteDescriptor, want: Target, current: Previous | null | undefined): { image?: string; jalienVersion?: string } {
    const spec = this.spec(site);
    const o: { image?: string; jalienVersion?: string } = {};
    if (want.image) o.image = want.image;
    else if (current?.image && current.image !== spec.vobox.image) o.image = current.image;
    if (want.jalienVersion) o.jalienVersion = want.jalienVersion;
    else if (spec.vobox.jalien && current?.jalienVersion && current.jalienVersion !== spec.vobox.jalien.version) o.jalienVersion = current.jalienVersion;
    return o;
  }

  async deploy(site: SiteDescriptor, target: Target, opts: OperationOptions & { current?: Previous | null }): Promise<void> {
    if (target.image) await this.learnArchive(target.image).catch(() => undefined);
    await this.apply(site, this.overrides(site, target, opts.current), opts);
  }

  async restore(site: SiteDescriptor, previous: Previous, opts: OperationOptions & { changed?: Target }): Promise<void> {
    if (!previous.image) {
      try {
        await destroySite(this.bounded(site, opts));
      } catch (err) {
        throw toSiteError(err);
      }
      return;
    }
    // Back to the previous image; the JAliEn pin back to the previous version when the rollout
    // changed JAliEn, else kept as the deploy kept it.
    const changedJalien = !opts.changed || opts.changed.jalienVersion !== undefined;
    const want: Target = { image: previous.image };
    if (changedJalien && previous.jalienVersion) want.jalienVersion = previous.jalienVersion;
    await this.apply(site, this.overrides(site, want, previous), opts);
  }
}

export function createEngineDriver(): SiteDriver {
  return new EngineDriver();
}
