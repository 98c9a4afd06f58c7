/**
 * The flattened image's config: runtime settings kept (Env, Entrypoint, Cmd, WorkingDir, User,
 * Labels, ExposedPorts, Volumes, StopSignal, Healthcheck, plus Shell/OnBuild/ArgsEscaped), one
 * history entry recording the source digest, a label with the source digest, rootfs = the one
 * layer. Deterministic: `created` comes from the source image, key order is fixed.
 */
import type { ImageConfig } from '../archive/image-source.ts';

export const SOURCE_LABEL = 'io.gridforge.flatten.source-digest';

const KEEP = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Volumes', 'WorkingDir', 'Labels', 'OnBuild', 'StopSignal', 'Shell'];

export function flatConfig(src: ImageConfig, sourceDigest: string, layerCount: number, diffId: string): ImageConfig {
  const inCfg = (src.config ?? {}) as Record<string, unknown>;
  const cfg: Record<string, unknown> = {};
  for (const k of KEEP) if (inCfg[k] !== undefined && inCfg[k] !== null) cfg[k] = inCfg[k];
  cfg.Labels = { ...((inCfg.Labels as Record<string, string>) ?? {}), [SOURCE_LABEL]: sourceDigest };
  const out: ImageConfig = { architecture: src.architecture ?? 'amd64', os: src.os ?? 'linux' };
  if (src.variant) out.variant = src.variant;
  if (src.created) out.created = src.created;
  if (src.author) out.author = src.author;
  out.config = cfg;
  out.rootfs = { type: 'layers', diff_ids: [diffId] };
  out.history = [{ ...(src.created ? { created: src.created } : {}), created_by: `gridforge image flatten ${sourceDigest}`, comment: `flattened ${layerCount} layers of ${sourceDigest}` }];
  return out;
}
