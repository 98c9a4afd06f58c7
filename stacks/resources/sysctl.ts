/**
 * Kernel limits the nofile setting needs (fs.nr_open, fs.file-max): raised only when the host's
 * value is below, set now (sysctl -w) and persisted for the next boot in the file named by
 * settings.host.sysctlFile (only the raised keys: a host default above ours is never lowered).
 */
import { shellQuote } from '../../base/shell-quote.ts';
import type { DeploySettings } from '../settings.ts';
import type { HostState } from '../session.ts';
import { removeHostFiles } from './host-file.ts';
import type { Resource } from './types.ts';

/** The host's current value of each sysctl gridforge manages. */
function current(h: HostState): Record<string, number> {
  return { 'fs.nr_open': h.nrOpen, 'fs.file-max': h.fileMax };
}

/** The sysctls below what the settings need, with the value to raise them to. */
export function raisedSysctls(st: DeploySettings, h: HostState): Record<string, number> {
  const have = current(h);
  return Object.fromEntries(Object.entries(st.host.sysctlMin).filter(([k, v]) => (have[k] ?? 0) < v));
}

/** The persisted file's content for the raised keys. */
export function sysctlFileContent(st: DeploySettings, raised: Record<string, number>): string {
  return `${st.host.sysctlFile.header}\n${Object.entries(raised).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;
}

export const sysctl: Resource = {
  kinds: ['sysctl'],
  describe: () => 'kernel fd limits (fs.nr_open, fs.file-max), persisted in /etc/sysctl.d',
  diff(d, o) {
    const raised = raisedSysctls(d.settings, o.host);
    const keys = Object.keys(raised);
    if (!keys.length) return [];
    const have = current(o.host);
    return [{ kind: 'sysctl', action: 'update', target: keys.join(', '), detail: keys.map((k) => `${k} ${have[k]} -> ${raised[k]}`).join(', ') }];
  },
  async apply(s, d, o, changes, log) {
    if (!changes.length) return;
    const raised = raisedSysctls(d.settings, o.host);
    const lines = Object.entries(raised).map(([k, v]) => `${k} = ${v}`);
    log(`raising ${lines.join(', ')}`);
    await s.ssh.writeFile(d.settings.host.sysctlFile.path, sysctlFileContent(d.settings, raised));
    const r = await s.ssh.exec(Object.entries(raised).map(([k, v]) => `sysctl -w ${shellQuote(`${k}=${v}`)}`).join(' && '));
    if (r.code !== 0) log(`warning: cannot set ${lines.join(', ')} now (${r.stderr.trim()}); written to /etc/sysctl.d for the next boot`);
  },
  destroy: (s, d) => removeHostFiles(s, [d.settings.host.sysctlFile.path], d.settings.host.sysctlFile.path),
  hostScript(st) {
    // Same rule as diff + apply: collect the keys below need, set them, persist only those.
    const f = st.host.sysctlFile;
    return [
      'gf_sysctl=""',
      ...Object.entries(st.host.sysctlMin).map(
        ([k, v]) => `if [ "$(sysctl -n ${shellQuote(k)})" -lt ${v} ]; then sysctl -w ${shellQuote(`${k}=${v}`)} >/dev/null || echo ${shellQuote(`warning: cannot set ${k} now; written to ${f.path}`)} >&2; gf_sysctl="$gf_sysctl"${shellQuote(`${k} = ${v}\n`)}; fi`,
      ),
      `if [ -n "$gf_sysctl" ]; then mkdir -p ${shellQuote(f.path.replace(/\/[^/]+$/, ''))}; printf '%s\\n%s' ${shellQuote(f.header)} "$gf_sysctl" > ${shellQuote(f.path)}; fi`,
    ];
  },
};
