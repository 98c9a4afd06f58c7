/** /etc/security/limits.d: the nofile limit for login sessions on the host. */
import { removeHostFiles, writeFileScript } from './host-file.ts';
import type { Resource } from './types.ts';

export const limits: Resource = {
  kinds: ['limits'],
  describe: () => 'limits.d nofile file',
  diff(d, o) {
    const f = d.settings.host.limitsFile;
    if (o.host.limitsText === f.content) return [];
    return [{ kind: 'limits', action: o.host.limitsText === null ? 'create' : 'update', target: f.path, detail: `nofile ${d.settings.nofile.applied}` }];
  },
  async apply(s, d, _o, changes, log) {
    if (!changes.length) return;
    const f = d.settings.host.limitsFile;
    log(`writing ${f.path}`);
    await s.ssh.writeFile(f.path, f.content);
  },
  destroy: (s, d) => removeHostFiles(s, [d.settings.host.limitsFile.path], d.settings.host.limitsFile.path),
  hostScript: (st) => [writeFileScript(st.host.limitsFile.path, st.host.limitsFile.content)],
};
