/**
 * The CVMFS client's /etc/cvmfs/default.local (only when a client is installed and the file is
 * absent or gridforge's), and the autofs trigger: every repository is listed once before the
 * container starts, so its mount exists when the container binds /cvmfs (avoids ELOOP inside).
 */
import { shellQuote } from '../../base/shell-quote.ts';
import { removeHostFiles, writeFileScript } from './host-file.ts';
import type { Resource } from './types.ts';

const MARK = '# written by gridforge';

export const cvmfsConfig: Resource = {
  kinds: ['cvmfs-config'],
  describe: () => 'CVMFS client default.local and the autofs mount trigger',
  diff(d, o) {
    const f = d.settings.host.cvmfsDefaultLocal;
    const text = o.host.cvmfsLocalText;
    if (!o.host.cvmfsClient || text === f.content) return [];
    if (text !== null && !text.startsWith(MARK)) return [];
    return [{ kind: 'cvmfs-config', action: text === null ? 'create' : 'update', target: f.path, detail: `CVMFS_REPOSITORIES=${d.settings.cvmfs.repositories.join(',')}` }];
  },
  warnings(d, o) {
    const f = d.settings.host.cvmfsDefaultLocal;
    const text = o.host.cvmfsLocalText;
    if (!o.host.cvmfsClient || text === f.content || text === null || text.startsWith(MARK)) return [];
    return [`${f.path} exists and was not written by gridforge: left alone; make sure CVMFS_REPOSITORIES includes ${d.settings.cvmfs.repositories.join(',')}`];
  },
  async apply(s, d, _o, changes, log) {
    const st = d.settings;
    if (changes.length) {
      log(`writing ${st.host.cvmfsDefaultLocal.path}`);
      await s.ssh.writeFile(st.host.cvmfsDefaultLocal.path, st.host.cvmfsDefaultLocal.content);
      await s.ssh.exec('command -v cvmfs_config >/dev/null && cvmfs_config reload >/dev/null 2>&1; true');
    }
    const trig = await s.ssh.exec(st.cvmfs.repositories.map((r) => `ls ${shellQuote(`${st.cvmfs.mount}/${r}`)}/ >/dev/null 2>&1 || printf '%s\\n' ${shellQuote(r)}`).join('; '));
    const missing = trig.stdout.split('\n').filter(Boolean);
    if (missing.length) log(`warning: CVMFS repositories not available under ${st.cvmfs.mount}: ${missing.join(', ')}`);
  },
  destroy: (s, d) => removeHostFiles(s, [d.settings.host.cvmfsDefaultLocal.path], d.settings.host.cvmfsDefaultLocal.path, { ifWrittenByGridforge: true }),
  hostScript(st) {
    const f = st.host.cvmfsDefaultLocal;
    const p = shellQuote(f.path);
    return [
      `if command -v cvmfs_config >/dev/null 2>&1 && { [ ! -e ${p} ] || head -1 ${p} | grep -q ${shellQuote(`^${MARK}`)}; }; then ${writeFileScript(f.path, f.content, 'cvmfs_config reload >/dev/null 2>&1 || true')}; fi`,
      ...st.cvmfs.repositories.map((r) => `ls ${shellQuote(`${st.cvmfs.mount}/${r}`)}/ >/dev/null 2>&1 || echo ${shellQuote(`warning: ${r} not mounted under ${st.cvmfs.mount}`)} >&2`),
    ];
  },
};
