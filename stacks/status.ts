/**
 * Read-only views of a deployed site: `siteStatus` (image, JAliEn version, uptime, address, service
 * states) and `siteLogs` (a service's log tail).
 */
import { GridforgeError } from '../base/errors.ts';
import { previousOf } from './deploy.ts';
import { checkHealth, serviceLogTail } from './health.ts';
import { openSession } from './session.ts';
import type { SiteSpec } from './spec.ts';

export interface SiteStatus {
  site: string;
  host: string;
  exists: boolean;
  running: boolean;
  image: string | null;
  imageId: string | null;
  jalienVersion: string | null;
  uptime: number | null;
  startedAt: string | null;
  ip: string | null;
  mac: string | null;
  services: Record<string, string>;
  healthy: boolean;
}

export async function siteStatus(spec: SiteSpec): Promise<SiteStatus> {
  const s = await openSession(spec);
  try {
    const name = spec.vobox.name;
    const ct = await s.docker.inspectContainer(name);
    const base = { site: spec.site, host: s.ssh.label };
    if (!ct) return { ...base, exists: false, running: false, image: null, imageId: null, jalienVersion: null, uptime: null, startedAt: null, ip: null, mac: null, services: {}, healthy: false };
    const h = await checkHealth(s.docker, name, spec.vobox.services);
    let jalienVersion: string | null = null;
    if (ct.State?.Running) {
      const r = await s.docker.exec(name, ['sh', '-c', 'command -v gridforge-ce-version >/dev/null && gridforge-ce-version'], 10_000).catch(() => null);
      if (r && r.code === 0 && r.stdout.trim()) jalienVersion = r.stdout.trim();
    }
    if (!jalienVersion) jalienVersion = previousOf(ct)?.jalienVersion ?? null;
    const ep = ct.NetworkSettings?.Networks?.[spec.vobox.network.name];
    const started = ct.State?.StartedAt ? Date.parse(ct.State.StartedAt) : NaN;
    return {
      ...base,
      exists: true,
      running: !!ct.State?.Running,
      image: ct.Config?.Image ?? null,
      imageId: ct.Image ?? null,
      jalienVersion,
      uptime: ct.State?.Running && Number.isFinite(started) ? Math.round((Date.now() - started) / 1000) : null,
      startedAt: ct.State?.StartedAt ?? null,
      ip: ep?.IPAddress || ep?.IPAMConfig?.IPv4Address || null,
      mac: (ep?.MacAddress || ct.Config?.MacAddress || null)?.toLowerCase() ?? null,
      services: h.services,
      healthy: h.healthy,
    };
  } finally {
    s.close();
  }
}

export async function siteLogs(spec: SiteSpec, service: string, bytes = 8000): Promise<string> {
  const s = await openSession(spec);
  try {
    if (!(await s.docker.inspectContainer(spec.vobox.name))) throw new GridforgeError(`VO-box ${spec.vobox.name} does not exist on ${s.ssh.label}`, { where: s.ssh.label, hint: 'Deploy it first: gridforge site deploy <site.yaml>.' });
    return await serviceLogTail(s.docker, spec.vobox.name, service, bytes);
  } finally {
    s.close();
  }
}
