/**
 * Health of a VO-box: every enabled service RUNNING in `supervisorctl status` (program names equal
 * service names, templates/vobox-contract.ts). Also the log tail of a failing service.
 */
import type { DockerApi } from './docker-api.ts';

export interface HealthResult {
  healthy: boolean;
  running: boolean;
  services: Record<string, string>;
  failing: string[];
  reason?: string;
}

export function parseSupervisorStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+([A-Z]+)\b/.exec(line.trim());
    if (!m) continue;
    const name = m[1].includes(':') ? m[1].split(':')[0] : m[1];
    out[name] = m[2];
  }
  return out;
}

export async function checkHealth(docker: DockerApi, container: string, services: string[]): Promise<HealthResult> {
  const ct = await docker.inspectContainer(container);
  if (!ct) return { healthy: false, running: false, services: {}, failing: services, reason: 'container does not exist' };
  if (!ct.State?.Running) return { healthy: false, running: false, services: {}, failing: services, reason: `container is ${ct.State?.Status} (exit code ${ct.State?.ExitCode})` };
  let r;
  try {
    r = await docker.exec(container, ['supervisorctl', 'status'], 15_000);
  } catch (err) {
    return { healthy: false, running: true, services: {}, failing: services, reason: `supervisorctl status failed: ${(err as Error).message}` };
  }
  const st = parseSupervisorStatus(r.stdout);
  const failing = services.filter((s) => st[s] !== 'RUNNING');
  return {
    healthy: failing.length === 0,
    running: true,
    services: st,
    failing,
    reason: failing.length ? failing.map((s) => `${s} ${st[s] ?? 'missing'}`).join(', ') : undefined,
  };
}

/** Poll until healthy; stop early when a service is FATAL or the container stopped. */
export async function waitHealthy(
  docker: DockerApi,
  container: string,
  services: string[],
  timeoutMs: number,
  onProgress: (m: string) => void = () => {},
): Promise<HealthResult> {
  const t0 = Date.now();
  let last: HealthResult | undefined;
  let lastMsg = '';
  for (;;) {
    last = await checkHealth(docker, container, services);
    if (last.healthy) return last;
    const fatal = last.failing.filter((s) => last!.services[s] === 'FATAL');
    if (fatal.length || (!last.running && Date.now() - t0 > 3000)) return last;
    const msg = `health: waiting for ${last.reason ?? ''}`;
    if (msg !== lastMsg) onProgress(msg);
    lastMsg = msg;
    if (Date.now() - t0 > timeoutMs) return { ...last, reason: `${last.reason} after ${Math.round(timeoutMs / 1000)} s` };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The last lines a service wrote (supervisord's stdout and stderr logs), plus the container's log. */
export async function serviceLogTail(docker: DockerApi, container: string, service: string, bytes = 3000): Promise<string> {
  const parts: string[] = [];
  for (const stream of ['stderr', 'stdout']) {
    try {
      const r = await docker.exec(container, ['supervisorctl', 'tail', `-${bytes}`, service, stream], 10_000);
      const text = r.stdout.replace(/^.*ERROR \(no log file\)\s*$/m, '');
      if (text.trim()) parts.push(`--- ${service} ${stream} ---\n${text.trimEnd()}`);
    } catch {
      /* container gone */
    }
  }
  if (!parts.length) {
    try {
      const r = await docker.raw('GET', `/v${docker.apiVersion}/containers/${encodeURIComponent(container)}/logs?stdout=1&stderr=1&tail=40`);
      const { demux } = await import('./docker-api.ts');
      const d = demux(r.body);
      parts.push(`--- container log ---\n${(d.stdout + d.stderr).trimEnd()}`);
    } catch {
      /* ignore */
    }
  }
  return parts.join('\n');
}
