/**
 * The narrow interface the rollout orchestration needs from a site: read what it runs, deploy a
 * new version, restore what it ran before. The production implementation wraps the deploy engine
 * (stacks/index.ts, see engine-driver.ts); the orchestration never talks SSH or Docker itself.
 */
import type { Previous, Target } from './types.ts';

/** One site of the inventory, as the driver understands it. */
export interface SiteDescriptor {
  /** The site name (`site:` in the site file); the unit of a rollout. */
  site: string;
  /** Absolute path of the site file. */
  file: string;
  /** The Docker host that carries the VO-box, `address:port` (sites sharing a host share this key). */
  host: string;
  /** Container name of the VO-box on that host. */
  container: string;
  /** Services enabled for this VO-box (supervisord program names). */
  services: string[];
}

/** What a site reports right now. */
export interface SiteObservation {
  /** The image reference the VO-box container runs (null: no VO-box there). */
  image: string | null;
  /** The image ID (sha256:...) when the driver knows it. */
  imageId?: string | null;
  /** The JAliEn version the CE reports (null: unknown / CE not running). */
  jalienVersion: string | null;
  /** Seconds since the container started (null: not running). */
  uptimeSeconds: number | null;
  /** supervisord program -> state (RUNNING, FATAL, BACKOFF, ...). */
  services: Record<string, string>;
  /** Every enabled service RUNNING. */
  healthy: boolean;
}

export interface OperationOptions {
  /** Aborted when the orchestration gives up on this operation (timeout, Ctrl-C). */
  signal: AbortSignal;
  /** How long the operation may take, ms (the driver passes it to the engine's own timeouts). */
  timeoutMs: number;
  /** Progress lines for this site. */
  onProgress?: (line: string) => void;
}

/** A failed site operation; `logTail` carries the failing service's log lines when known. */
export class SiteOperationError extends Error {
  readonly logTail?: string;
  readonly unreachable: boolean;
  constructor(message: string, opts: { logTail?: string; unreachable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SiteOperationError';
    this.logTail = opts.logTail;
    this.unreachable = opts.unreachable ?? false;
  }
}

export interface SiteDriver {
  /** Validate a site file and describe the site (throws UsageError on a bad file). */
  describe(file: string): Promise<SiteDescriptor>;
  /** Read the site's current state. Throws SiteOperationError({ unreachable: true }) when unreachable. */
  observe(site: SiteDescriptor, opts: OperationOptions): Promise<SiteObservation>;
  /** Whether an observation shows the site on the target version (image and/or JAliEn). */
  onTarget(site: SiteDescriptor, observed: SiteObservation, target: Target): boolean;
  /**
   * Apply the target to the site, keeping what the rollout does not change as the site runs it
   * now (`current`: a JAliEn rollout keeps the image the site runs, even when that came from an
   * earlier rollout and differs from the site file). May throw SiteOperationError; the deploy
   * engine may already have restored the previous container itself (checked with observe()).
   */
  deploy(site: SiteDescriptor, target: Target, opts: OperationOptions & { current?: Previous | null }): Promise<void>;
  /**
   * Return the site to what it ran before. `changed` says what the rollout changed (restore only
   * that: an image rollout leaves the site's own JAliEn pin alone).
   */
  restore(site: SiteDescriptor, previous: Previous, opts: OperationOptions & { changed?: Target }): Promise<void>;
  /** Last lines of a service's log (for failure reports); best effort. */
  logTail?(site: SiteDescriptor, service: string, opts: OperationOptions): Promise<string>;
  /** Release connections. */
  close?(): Promise<void>;
}
