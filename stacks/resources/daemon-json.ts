/**
 * /etc/docker/daemon.json: gridforge's keys merged in, unrelated keys kept; dockerd reloaded with
 * SIGHUP for the reloadable ones (live-restore). Never removed: the keys are shared host settings.
 */
import { GridforgeError } from '../../base/errors.ts';
import { shellQuote } from '../../base/shell-quote.ts';
import { stableJson } from '../settings.ts';
import type { Resource } from './types.ts';

const PATH = '/etc/docker/daemon.json';

/** The host's daemon.json with `want` merged over it (throws when the host's file is not JSON). */
export function mergeDaemonJson(current: string | null, want: Record<string, unknown>, where: string): Record<string, unknown> {
  let cur: Record<string, unknown> = {};
  if (current && current.trim()) {
    try {
      cur = JSON.parse(current);
    } catch (err) {
      throw new GridforgeError(`${PATH} on the host is not valid JSON: ${(err as Error).message}`, { where, hint: 'Fix daemon.json on the host by hand; gridforge merges into it and will not overwrite a file it cannot read.' });
    }
  }
  return { ...cur, ...want };
}

export const daemonJson: Resource = {
  kinds: ['daemon-json'],
  describe: () => `${PATH} keys (merged, unrelated keys kept; SIGHUP for live-restore)`,
  diff(d, o) {
    const want = d.settings.host.daemonJson;
    const current = mergeDaemonJson(o.host.daemonJsonText, {}, `${o.hostLabel}:${PATH}`);
    const changed = Object.keys(want).filter((k) => stableJson(current[k]) !== stableJson(want[k]));
    if (!changed.length) return [];
    const reloadable = d.settings.host.reloadableKeys;
    const reload = changed.filter((k) => reloadable.includes(k));
    const later = changed.filter((k) => !reloadable.includes(k));
    return [
      {
        kind: 'daemon-json',
        action: o.host.daemonJsonText === null ? 'create' : 'update',
        target: PATH,
        detail:
          `set ${changed.join(', ')} (other keys kept)` +
          (reload.length ? `; reload dockerd (SIGHUP) for ${reload.join(', ')}` : '') +
          (later.length ? `; ${later.join(', ')} apply to new containers after the next dockerd restart (this VO-box sets them itself)` : ''),
      },
    ];
  },
  async apply(s, d, o, changes, log) {
    if (!changes.length) return;
    log(`merging ${PATH}`);
    const merged = mergeDaemonJson(o.host.daemonJsonText, d.settings.host.daemonJson, `${o.hostLabel}:${PATH}`);
    await s.ssh.writeFile(PATH, `${JSON.stringify(merged, null, 2)}\n`);
    // Reload (SIGHUP): live-restore is applied without restarting dockerd.
    await s.ssh.run('kill -HUP $(cat /var/run/docker.pid 2>/dev/null || pidof dockerd)', 'cannot reload dockerd (SIGHUP)');
    for (let i = 0; i < 50; i++) {
      const info = await s.docker.call('GET', '/info');
      if (info.data.LiveRestoreEnabled === true) break;
      if (i === 49) throw new GridforgeError('dockerd did not enable live-restore after reload', { where: s.ssh.label, hint: 'Check the host dockerd log; daemon.json may hold a key that conflicts with a dockerd flag.' });
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  async destroy() {
    return { removed: [], kept: [`${PATH} keys (live-restore, default-ulimits, log options: shared host settings)`] };
  },
  hostScript(st) {
    // python3: the host has no jq by default; prints "changed" only when the file changed.
    const merge = `import json,os
p='${PATH}'
cur=json.load(open(p)) if os.path.exists(p) and os.path.getsize(p)>0 else {}
want=json.loads(${JSON.stringify(JSON.stringify(st.host.daemonJson))})
new=dict(cur); new.update(want)
if new!=cur:
    os.makedirs('/etc/docker',exist_ok=True); open(p+'.tmp','w').write(json.dumps(new,indent=2)+'\\n'); os.replace(p+'.tmp',p); print('changed')`;
    return [`if [ "$(python3 -c ${shellQuote(merge)})" = changed ]; then kill -HUP "$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd)"; fi`];
  },
};
