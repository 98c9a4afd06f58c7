/**
 * systemd drop-ins raising LimitNOFILE of docker and containerd (only where systemd runs); a change
 * restarts both (live-restore keeps the containers running).
 */
import { removeHostFiles, writeFileScript } from './host-file.ts';
import type { Resource } from './types.ts';

export const systemdDropIns: Resource = {
  kinds: ['systemd-dropin'],
  describe: () => 'systemd LimitNOFILE drop-ins for docker and containerd',
  diff(d, o) {
    if (!o.host.systemd) return [];
    return d.settings.host.systemdDropIns
      .filter((f) => o.host.dropIns[f.path] !== f.content)
      .map((f) => ({
        kind: 'systemd-dropin' as const,
        action: o.host.dropIns[f.path] == null ? ('create' as const) : ('update' as const),
        target: f.path,
        detail: `LimitNOFILE=${d.settings.nofile.applied}; daemon-reload and restart (live-restore keeps containers)`,
      }));
  },
  async apply(s, d, _o, changes, log) {
    if (!changes.length) return;
    for (const f of d.settings.host.systemdDropIns) await s.ssh.writeFile(f.path, f.content);
    log('systemctl daemon-reload; restarting containerd and docker for LimitNOFILE (live-restore keeps containers running)');
    await s.ssh.run('systemctl daemon-reload && systemctl restart containerd && systemctl restart docker', 'cannot restart docker after changing LimitNOFILE');
    for (let i = 0; i < 100; i++) {
      try {
        await s.docker.negotiate();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  },
  destroy: (s, d) => removeHostFiles(s, d.settings.host.systemdDropIns.map((f) => f.path), 'systemd drop-ins'),
  hostScript: (st) => [
    `if [ -d /run/systemd/system ]; then gf_changed=0; ${st.host.systemdDropIns.map((f) => writeFileScript(f.path, f.content, 'gf_changed=1')).join('; ')}; if [ $gf_changed = 1 ]; then systemctl daemon-reload && systemctl restart containerd docker; fi; fi`,
  ],
};
