/**
 * Bounds on what an image input may make gridforge read, buffer or write, so a crafted archive is
 * refused with a clear message instead of exhausting memory or disk:
 * - per-layer uncompressed size (option `maxLayerSize`, environment GRIDFORGE_MAX_LAYER_SIZE,
 *   meant for the CLI flag `--max-layer-size`): a decompression bomb stops at the limit;
 * - entries over all layers (option `maxEntries`, GRIDFORGE_MAX_ENTRIES), counted while scanning
 *   (the same 5,000,000 as images/layer/apply.ts DEFAULT_LIMITS);
 * - what may follow a layer's end-of-archive marker (zero padding: GNU tar pads to its 10 KiB
 *   record, other writers to larger blocking factors; Docker drains and ignores it);
 * - JSON documents (moby distribution/pull_v2.go caps manifests at 4 MiB; configs get 8 MiB).
 */
import { UsageError } from '../../base/errors.ts';

export const DEFAULT_MAX_LAYER_SIZE = 64 * 1024 ** 3;
export const DEFAULT_MAX_ENTRIES = 5_000_000;
export const MAX_TRAILING_BYTES = 1 << 20;
export const MAX_INDEX_JSON = 4 << 20;
export const MAX_MANIFEST_JSON = 4 << 20;
export const MAX_CONFIG_JSON = 8 << 20;
export const MAX_OCI_LAYOUT = 64 << 10;

export const LAYER_SIZE_ENV = 'GRIDFORGE_MAX_LAYER_SIZE';
export const ENTRIES_ENV = 'GRIDFORGE_MAX_ENTRIES';

export interface ScanLimits {
  /** Largest uncompressed layer, in bytes. */
  maxLayerSize: number;
  /** Most entries over all layers of the image. */
  maxEntries: number;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `123`, `512M`, `64G`, `1.5T` (binary units, optional `i`/`B`: `64GiB`) -> bytes. */
export function parseByteSize(text: string, where: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  const n = m ? Math.floor(parseFloat(m[1]) * UNITS[m[2].toUpperCase()]) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`invalid size ${JSON.stringify(text)}`, { where, hint: 'Give a positive number of bytes, optionally with K, M, G or T (binary units), e.g. 100G.' });
  return n;
}

export function formatBytes(n: number): string {
  for (const [u, f] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) if (n >= f) return `${+(n / f).toFixed(1)} ${u}`;
  return `${n} bytes`;
}

/** A layer past the per-layer limit (`bytes` so far): the error every reader of layers raises. */
export function layerTooLarge(max: number, bytes: number, where: string): UsageError {
  return new UsageError(`uncompressed layer is larger than the per-layer limit of ${formatBytes(max)} (${bytes} bytes so far)`, {
    where,
    hint: `A small blob that expands this much is a decompression bomb; if the layer is genuine, raise the limit with --max-layer-size <size> (environment ${LAYER_SIZE_ENV}, e.g. 200G).`,
  });
}

/** Options first, then the environment, then the defaults. */
export function resolveScanLimits(opts: Partial<ScanLimits> = {}): ScanLimits {
  const env = (name: string) => (process.env[name] ? parseByteSize(process.env[name]!, name) : undefined);
  return {
    maxLayerSize: opts.maxLayerSize ?? env(LAYER_SIZE_ENV) ?? DEFAULT_MAX_LAYER_SIZE,
    maxEntries: opts.maxEntries ?? env(ENTRIES_ENV) ?? DEFAULT_MAX_ENTRIES,
  };
}
