/**
 * `docker://` sources for the flattener and the sandbox writer: pulled into a temporary OCI
 * layout (pull.ts) and opened by images/archive/oci-layout.ts; closing the source removes it.
 */
import { openOciLayout } from '../archive/oci-layout.ts';
import type { ImageSource } from '../archive/image-source.ts';
import { pullToLayout, type PullOptions } from './pull.ts';

export { isRegistryRef } from './reference.ts';

export async function openRegistryImage(source: string, opts: PullOptions = {}): Promise<ImageSource> {
  const pulled = await pullToLayout(source, opts);
  try {
    const src = openOciLayout(pulled.dir);
    for (const l of src.layers) {
      // a layer scanned while it was inflated (pull.ts): its digest was computed there, over the
      // same file; checked against the layer's DiffID by the layer scan as any prescan is
      const p = pulled.prescans.get(l.digest ?? '');
      if (p && p.digest === l.diffId && l.offset === 0) l.prescan = p;
    }
    return { ...src, source, close: async () => { await src.close(); pulled.close(); } };
  } catch (e) {
    pulled.close();
    throw e;
  }
}
