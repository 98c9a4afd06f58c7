/**
 * The shape every deploy resource has, after a Pulumi provider's resource: what the site wants
 * (Desired, from stacks/settings.ts deriveSettings), what the host has (Observed: plain data read
 * once by observe.ts), a pure diff between the two, and apply / destroy over a session. The SSH
 * engine (stacks/plan.ts, deploy.ts) loops over the list in index.ts; the Pulumi program
 * (stacks/pulumi/program.ts) is generated from the same resources (hostScript and the args helpers).
 */
import type { DeployImage } from '../deploy-image.ts';
import type { HostState, Session } from '../session.ts';
import type { DeploySettings } from '../settings.ts';

export type ChangeKind =
  | 'directories'
  | 'daemon-json'
  | 'limits'
  | 'sysctl'
  | 'systemd-dropin'
  | 'cvmfs-config'
  | 'network'
  | 'shim'
  | 'image'
  | 'container';

export interface Change {
  kind: ChangeKind;
  action: 'create' | 'update' | 'replace' | 'start' | 'load' | 'pull' | 'reload';
  target: string;
  detail: string;
}

/** What the site file asks for, plus the deploy options that change what a diff may do. */
export interface Desired {
  settings: DeploySettings;
  /** The site file, for error messages (`<file>: vobox.network`). */
  file: string;
  /** --recreate-network: a differing Docker network is replaced instead of refused. */
  recreateNetwork: boolean;
}

/** The host as read by observe.ts: plain data, no connection (unit tests build it by hand). */
export interface Observed {
  /** `user@host:port`, for messages. */
  hostLabel: string;
  /** The daemon's negotiated API version (shapes the container create body). */
  apiVersion: string;
  host: HostState;
  /** `GET /networks/<name>` or null. */
  network: any | null;
  /** `GET /containers/<name>/json` or null. */
  container: any | null;
  /** Where the image comes from, and its ID on the host (null: not there). */
  image: { source: DeployImage; hostId: string | null };
}

export type Log = (message: string) => void;

export interface DestroyOutcome {
  removed: string[];
  kept: string[];
}

export interface Resource {
  /** The change kinds this resource reports (in plan order). */
  readonly kinds: readonly ChangeKind[];
  /** One line for the plan legend and the README: what this resource manages. */
  describe(): string;
  /** What would change; pure: reads nothing, writes nothing (throws UsageError for a conflict). */
  diff(desired: Desired, observed: Observed): Change[];
  /** Warnings to show with the plan (optional). */
  warnings?(desired: Desired, observed: Observed): string[];
  /** Make the host match; `changes` are this resource's changes from diff (may be empty). */
  apply(s: Session, desired: Desired, observed: Observed, changes: Change[], log: Log): Promise<void>;
  /** Remove what apply created (volume data and shared host settings are kept). */
  destroy(s: Session, desired: Desired, log: Log): Promise<DestroyOutcome>;
  /** Lines of the Pulumi host-setup script doing what apply does (host resources only). */
  hostScript?(settings: DeploySettings): string[];
}
