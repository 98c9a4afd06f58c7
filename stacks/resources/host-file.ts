/**
 * Helpers the host-file resources share: writing a file only when its content differs (Pulumi host
 * script), removing gridforge's files on destroy, and whether other gridforge VO-boxes on the host
 * still need the shared host files. Every value reaching a shell is quoted (base/shell-quote.ts).
 */
import { shellQuote } from '../../base/shell-quote.ts';
import type { Session } from '../session.ts';
import { LABEL_MANAGED, MANAGED_BY } from '../settings.ts';
import type { DestroyOutcome } from './types.ts';

/** Shell lines writing `content` to `path` (parent created); `onChange` runs only when it changed. */
export function writeFileScript(path: string, content: string, onChange = ''): string {
  const dir = path.replace(/\/[^/]+$/, '') || '/';
  const c = shellQuote(content);
  const p = shellQuote(path);
  return `mkdir -p ${shellQuote(dir)}; if ! printf %s ${c} | cmp -s - ${p}; then printf %s ${c} > ${p}; ${onChange || ':'}; fi`;
}

const inUse = new WeakMap<Session, Promise<boolean>>();

/** Whether gridforge containers remain on the host (asked once per session, after containers are removed). */
export function otherVoboxes(s: Session): Promise<boolean> {
  let p = inUse.get(s);
  if (!p) {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${LABEL_MANAGED}=${MANAGED_BY}`] }));
    p = s.docker.call('GET', `/containers/json?all=1&filters=${filters}`).then((r) => (r.data as unknown[]).length > 0);
    inUse.set(s, p);
  }
  return p;
}

/**
 * Remove host files gridforge wrote, unless other gridforge VO-boxes still run on the host.
 * `ifWrittenByGridforge`: only when the file's first line says gridforge wrote it.
 */
export async function removeHostFiles(s: Session, paths: string[], what: string, opts: { ifWrittenByGridforge?: boolean } = {}): Promise<DestroyOutcome> {
  if (await otherVoboxes(s)) return { removed: [], kept: [`${what} (other gridforge VO-boxes on this host)`] };
  const test = (p: string) => (opts.ifWrittenByGridforge ? `head -1 ${p} 2>/dev/null | grep -q '^# written by gridforge'` : `[ -e ${p} ]`);
  const script = paths.map((f) => shellQuote(f)).map((p) => `if ${test(p)}; then rm -f ${p} && printf '%s\\n' ${p}; fi`).join('; ');
  const r = await s.ssh.exec(`${script}; true`);
  return { removed: r.stdout.split('\n').filter(Boolean), kept: [] };
}

export const nothingRemoved = (kept: string[] = []): DestroyOutcome => ({ removed: [], kept });
