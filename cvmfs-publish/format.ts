/**
 * CernVM-FS format constants and small pure helpers (md5path keys, flags, object paths).
 * Sources: cvmfs/cvmfs catalog_sql.cc (flags, schema), crypto/hash.h (suffixes), catalog_counters.h.
 */
import { UsageError } from '../base/errors.ts';
import { md5Words } from './md5.ts';

export const SCHEMA_VERSION = '2.5';
export const SCHEMA_REVISION = '7';
export const DEFAULT_TTL = 240;
export const MAX_CATALOG_ENTRIES = 200_000;
export const NULL_HASH = '0000000000000000000000000000000000000000';
/** `R` line of every manifest: MD5 of the empty string (the root path key). */
export const ROOT_PATH_HASH = 'd41d8cd98f00b204e9800998ecf8427e';

export const Flags = {
  Dir: 1,
  NestedMountpoint: 2,
  NestedRoot: 32,
  File: 4,
  Link: 8,
  Special: 16,
  Chunked: 64,
} as const;
/** Bits 8-10: hash algorithm (0 = SHA-1); bits 11-13: compression (0 = zlib). */
export const HASH_ALGO_SHIFT = 8;
export const COMPRESSION_SHIFT = 11;

export type ObjectSuffix = '' | 'C' | 'H' | 'X' | 'M' | 'P';

/** Path of an object relative to the repository root: `data/ab/cdef...<suffix>`. */
export function objectPath(hash: string, suffix: ObjectSuffix = ''): string {
  return `data/${hash.slice(0, 2)}/${hash.slice(2)}${suffix}`;
}

export function isHexHash(s: string): boolean {
  return /^[0-9a-f]{40}$/.test(s);
}

const words = new BigInt64Array(2);
const wordsAs32 = new Int32Array(words.buffer);
/** MD5 of the repository path ('' for the root, '/a/b' otherwise) split into two signed LE int64. */
export function md5path(path: string): [bigint, bigint] {
  wordsAs32.set(md5Words(path)); // little-endian words -> two signed LE int64 (this platform is LE, as cvmfs assumes)
  return [words[0], words[1]];
}

/** Normalise a path inside the repository to '' (root) or '/a/b'. A '..' component or a NUL is bad input (UsageError naming the path). */
export function normalizeRepoPath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  for (const part of parts) {
    if (part === '..' || part.includes('\0')) {
      throw new UsageError(`path ${JSON.stringify(p)} escapes the repository (${part === '..' ? "'..' component" : 'NUL byte'})`, { where: p, hint: 'give a path inside the repository without ".." components, e.g. containers/fs/singularity/alma9' });
    }
  }
  return parts.length === 0 ? '' : `/${parts.join('/')}`;
}

export function parentPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '' : p.slice(0, i);
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return `${dir}/${name}`;
}

export const COUNTER_NAMES = [
  'regular', 'symlink', 'special', 'dir', 'nested', 'chunked', 'chunked_size', 'chunks',
  'file_size', 'xattr', 'external', 'external_file_size',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;
export function zeroCounters(): Counters {
  return Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Counters;
}
export function addCounters(a: Counters, b: Counters): void {
  for (const n of COUNTER_NAMES) a[n] += b[n];
}
