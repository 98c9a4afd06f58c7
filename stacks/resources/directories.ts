/** Host directories of the persistent volumes (home, grid-security): created, never removed. */
import { shellQuote } from '../../base/shell-quote.ts';
import type { Resource } from './types.ts';

export const directories: Resource = {
  kinds: ['directories'],
  describe: () => 'host directories of the persistent volumes (kept on destroy)',
  diff(_d, o) {
    const missing = o.host.missingDirs;
    return missing.length ? [{ kind: 'directories', action: 'create', target: missing.join(', '), detail: 'persistent volumes' }] : [];
  },
  async apply(s, _d, o, changes, log) {
    if (!changes.length) return;
    log(`creating ${o.host.missingDirs.join(', ')}`);
    await s.ssh.run(`mkdir -p -- ${o.host.missingDirs.map(shellQuote).join(' ')}`, 'cannot create volume directories');
  },
  async destroy(_s, d) {
    return { removed: [], kept: [`volume data ${d.settings.host.directories.map((x) => x.path).join(', ')}`] };
  },
  hostScript: (st) => [`mkdir -p -- ${st.host.directories.map((x) => shellQuote(x.path)).join(' ')}`],
};
