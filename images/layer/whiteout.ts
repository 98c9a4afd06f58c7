/**
 * Step 3a: whiteouts. `.wh.NAME` removes NAME from the layers below; `.wh..wh..opq` hides every
 * lower-layer entry under its directory while entries of the same layer survive, whatever their
 * order in the tar (nodes carry the newest layer that touched them). A bare `.wh.`, or one whose
 * name would leave its directory, is refused.
 */
import { UsageError } from '../../base/errors.ts';
import type { Node } from './tree.ts';

export const WH_PREFIX = '.wh.';
export const OPAQUE = '.wh..wh..opq';

export function isWhiteout(base: string): boolean {
  return base.startsWith(WH_PREFIX);
}

/** Remove every entry under `dir` that is older than `layer`, keeping same-layer ones. */
export function applyOpaque(dir: Node, layer: number): void {
  for (const [name, child] of dir.children!) {
    if (child.layer < layer) dir.children!.delete(name);
    else if (child.children) applyOpaque(child, layer);
  }
}

/** Validate a whiteout name; returns the name it deletes, or null for aufs metadata to ignore. */
export function whiteoutTarget(base: string, where: string): string | null {
  const name = base.slice(WH_PREFIX.length);
  if (name === '') throw new UsageError('bare .wh. whiteout is invalid', { where, hint: 'The layer is malformed; rebuild it.' });
  if (name === '.' || name === '..' || name.includes('/')) throw new UsageError(`whiteout ${JSON.stringify(base)} escapes its directory`, { where, hint: 'The layer tries to delete outside its directory; do not use it.' });
  if (name.startsWith(WH_PREFIX)) return null; // .wh..wh.plnk etc.: aufs internals
  return name;
}
