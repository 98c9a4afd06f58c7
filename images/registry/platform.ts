/**
 * Platforms as `os/architecture[/variant]` (the OCI image index `platform` object): the
 * `--platform` value, its default (linux/amd64) and the choice among an index's manifests. A
 * missing variant matches any (arm64 images carry `v8` or nothing).
 */
import { UsageError } from '../../base/errors.ts';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM = 'linux/amd64';

export function parsePlatform(s: string | undefined): Platform {
  const v = s ?? DEFAULT_PLATFORM;
  const parts = v.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new UsageError(`${JSON.stringify(v)} is not a platform`, { where: '--platform', hint: 'Write os/architecture[/variant], e.g. linux/amd64 or linux/arm64.' });
  }
  return { os: parts[0], architecture: parts[1], variant: parts[2] };
}

export function formatPlatform(p: Partial<Platform> | undefined): string {
  if (!p?.os || !p.architecture) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export function matchesPlatform(want: Platform, have: Partial<Platform> | undefined): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  return !want.variant || !have.variant || want.variant === have.variant;
}
