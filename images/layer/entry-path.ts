/**
 * Step 1 of applying an entry: clean its name into components. `..` and absolute names are refused
 * (a layer never needs them; they are the classic way out of the root), `.` and empty components
 * are dropped, a trailing slash is ignored.
 */
import { UsageError } from '../../base/errors.ts';

export function entryComponents(name: string, where: string): string[] {
  if (name.includes('\0')) throw new UsageError('entry name contains a NUL byte', { where, hint: 'The layer is malformed; rebuild it.' });
  if (name.startsWith('/')) throw new UsageError(`absolute entry path ${JSON.stringify(name)} refused`, { where, hint: 'Layer entries must be relative to the image root; rebuild the layer.' });
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw new UsageError(`entry path ${JSON.stringify(name)} contains '..'`, { where, hint: 'The layer tries to write outside the image root; do not use it.' });
  return comps;
}

/** Hardlink targets: relative to the image root; a leading '/' means the root too. */
export function linkComponents(linkname: string, where: string): string[] {
  const comps = linkname.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw new UsageError(`hardlink target ${JSON.stringify(linkname)} contains '..'`, { where, hint: 'Hardlink targets must stay inside the image root; do not use this layer.' });
  if (comps.length === 0) throw new UsageError('hardlink to the image root refused', { where, hint: 'The layer is malformed.' });
  return comps;
}
