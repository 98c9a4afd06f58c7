/**
 * Plan: read the host once (resources/observe.ts), then ask every resource (resources/index.ts)
 * what it would change. Reading only; nothing on the host changes.
 */
import { nofileMax, type Session } from './session.ts';
import { deriveSettings, type DeploySettings } from './settings.ts';
import type { SiteSpec } from './spec.ts';
import { RESOURCES, type Change, type Desired, type Observed } from './resources/index.ts';
import { observe } from './resources/observe.ts';
export { describeContainer } from './resources/container.ts';
export type { Change, ChangeKind } from './resources/index.ts';

export interface Plan {
  site: string;
  host: string;
  apiVersion: string;
  changes: Change[];
  warnings: string[];
  settings: DeploySettings;
  /** What deploy applies with: the desired state and the host as read. */
  desired: Desired;
  observed: Observed;
}

export interface Overrides {
  image?: string;
  jalienVersion?: string;
  recreateNetwork?: boolean;
}

export function applyOverrides(spec: SiteSpec, o: Overrides = {}): SiteSpec {
  const copy = structuredClone(spec) as SiteSpec;
  if (o.image) copy.vobox.image = o.image;
  if (o.jalienVersion) copy.vobox.jalien = { version: o.jalienVersion };
  return copy;
}

/** The settings with the host's achievable nofile, and the clamp warning when it bites. */
export function settingsFor(spec: SiteSpec, observed: Observed): { settings: DeploySettings; warnings: string[] } {
  const h = observed.host;
  // With systemd the drop-ins raise the engine's limit (up to fs.nr_open); without, dockerd's
  // current hard limit is what containers can get.
  const max = h.systemd ? h.nrOpen : nofileMax(h);
  const settings = deriveSettings(spec, { nofileMax: max });
  const warnings = settings.nofile.clamped
    ? [`nofile ${settings.nofile.requested} requested, but this host allows at most ${max} (dockerd/containerd hard limit${h.systemd ? '' : ', no systemd to raise it'}, fs.nr_open ${h.nrOpen}): clamped to ${settings.nofile.applied}`]
    : [];
  return { settings, warnings };
}

/** Every resource's changes and warnings, in apply order. Pure. */
export function diffAll(desired: Desired, observed: Observed): { changes: Change[]; warnings: string[] } {
  const changes: Change[] = [];
  const warnings: string[] = [];
  for (const r of RESOURCES) {
    changes.push(...r.diff(desired, observed));
    warnings.push(...(r.warnings?.(desired, observed) ?? []));
  }
  return { changes, warnings };
}

export async function computePlan(s: Session, spec: SiteSpec, overrides: Overrides = {}): Promise<Plan> {
  const file = spec.file ?? 'site file';
  const observed = await observe(s, deriveSettings(spec), file);
  const { settings, warnings } = settingsFor(spec, observed);
  const desired: Desired = { settings, file, recreateNetwork: !!overrides.recreateNetwork };
  const diff = diffAll(desired, observed);
  return { site: spec.site, host: s.ssh.label, apiVersion: s.api.apiVersion, changes: diff.changes, warnings: [...warnings, ...diff.warnings], settings, desired, observed };
}

/** The plan as lines of text (what `site plan` prints, and what a refused deploy shows). */
export function formatPlan(plan: Plan): string[] {
  if (!plan.changes.length) return [`${plan.site} on ${plan.host}: no changes`];
  return [
    `${plan.site} on ${plan.host} (Docker API ${plan.apiVersion}): ${plan.changes.length} change(s)`,
    ...plan.changes.map((c) => `  ${c.action.padEnd(7)} ${c.kind.padEnd(14)} ${c.target}: ${c.detail}`),
  ];
}
