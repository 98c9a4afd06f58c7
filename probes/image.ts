/**
 * What a job image in the repository needs from a node, read from the image itself:
 * - architecture: the ELF machine of its C library (else of /bin/sh);
 * - x86-64 level: the ISA-needed marker on libc.so.6 / ld.so (probes/elf.ts); without one, the
 *   level its distribution is built for (os-release: RHEL family 9 -> x86-64-v2, 10 -> x86-64-v3,
 *   the levels Red Hat builds them for), else baseline;
 * - bind points: the JobAgent binds /cvmfs and the job directory on /workdir, and a read-only
 *   image must already hold both (templates/vobox-contract.ts JOB_BIND_POINTS).
 * Symlinks are followed inside the image (lib64 -> usr/lib64) and for the image path itself.
 */
import * as path from 'node:path';
import { UsageError } from '../base/errors.ts';
import type { RepositoryReader } from '../cvmfs-publish/index.ts';
import { elfInfo } from './elf.ts';

/** Bind destinations the JobAgent uses (apptainer -B /cvmfs:/cvmfs -B <job dir>:/workdir). */
export const JOBAGENT_BINDS = ['/cvmfs', '/workdir'];

const LIBC = [
  'lib64/libc.so.6', 'usr/lib64/libc.so.6', 'lib/x86_64-linux-gnu/libc.so.6', 'usr/lib/x86_64-linux-gnu/libc.so.6',
  'lib/aarch64-linux-gnu/libc.so.6', 'usr/lib/aarch64-linux-gnu/libc.so.6', 'lib/libc.so.6', 'usr/lib/libc.so.6',
];
const LDSO = ['lib64/ld-linux-x86-64.so.2', 'usr/lib64/ld-linux-x86-64.so.2', 'lib/ld-linux-aarch64.so.1', 'usr/lib/ld-linux-aarch64.so.1'];
const RHEL_LIKE = /(^|\s)(rhel|centos|fedora|almalinux|rocky|ol)(\s|$)/;

export interface ImageRequirements {
  /** The path as given and the directory it resolves to (links followed). */
  path: string;
  resolved: string;
  arch: string | null;
  x86_64_level: number;
  levelFrom: string;
  os: { id: string | null; versionId: string | null };
  /** Bind destinations present in the image. */
  bindPoints: Record<string, boolean>;
}

/**
 * Resolve `rel` below `root` (repository paths without a leading slash), following symlinks in
 * every component; absolute link targets are taken inside `root`. undefined when absent.
 */
export async function resolveIn(r: RepositoryReader, root: string, rel: string): Promise<string | undefined> {
  const parts = rel.split('/').filter((p) => p && p !== '.');
  let cur = root;
  for (let hops = 0; parts.length > 0; ) {
    const part = parts.shift()!;
    if (part === '..') {
      cur = cur.length > root.length ? path.posix.dirname(cur) : root;
      continue;
    }
    const next = cur ? `${cur}/${part}` : part;
    const st = await r.stat(next);
    if (!st) return undefined;
    if (st.type === 'symlink') {
      if (++hops > 40) return undefined;
      const t = st.target ?? '';
      parts.unshift(...t.split('/').filter((p) => p && p !== '.'));
      if (t.startsWith('/')) cur = root;
      continue;
    }
    cur = next;
  }
  return cur;
}

async function readIf(r: RepositoryReader, root: string, candidates: string[]): Promise<{ file: string; data: Buffer } | undefined> {
  for (const c of candidates) {
    const p = await resolveIn(r, root, c);
    if (p && (await r.stat(p))?.type === 'file') return { file: c, data: await r.readFile(p) };
  }
  return undefined;
}

function osRelease(text: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) o[m[1]] = m[2].replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return o;
}

/** The level a distribution's packages are built for, from its os-release (RHEL family). */
export function levelFromOsRelease(id: string | undefined, idLike: string | undefined, versionId: string | undefined): number | undefined {
  if (!RHEL_LIKE.test(` ${id ?? ''} ${idLike ?? ''} `) || id === 'fedora') return undefined;
  const major = Number((versionId ?? '').split('.')[0]);
  if (major >= 10) return 3;
  if (major === 9) return 2;
  return undefined;
}

export async function readImageRequirements(r: RepositoryReader, imagePath: string): Promise<ImageRequirements> {
  const given = imagePath.replace(/^\/+|\/+$/g, '');
  const root = await resolveIn(r, '', given);
  if (!root || (await r.stat(root))?.type !== 'dir') {
    throw new UsageError(`${given} is not an image directory in the repository`, { where: given, hint: 'give the image path, e.g. containers/fs/singularity/alma9-2026.11 (list them with `gridforge repo ls <repo> containers/fs/singularity`)' });
  }
  let arch: string | null = null;
  let level = 0;
  let levelFrom = '';
  for (const group of [LIBC, LDSO]) {
    const f = await readIf(r, root, group);
    const info = f && elfInfo(f.data);
    if (!info) continue;
    arch ??= info.machine;
    if (info.x86IsaLevel !== undefined && info.x86IsaLevel > level) {
      level = info.x86IsaLevel;
      levelFrom = `ISA marker of /${f.file}`;
    }
  }
  if (arch === null) {
    const sh = await readIf(r, root, ['bin/sh', 'usr/bin/sh']);
    arch = (sh && elfInfo(sh.data)?.machine) ?? null;
  }
  const rel = await readIf(r, root, ['etc/os-release', 'usr/lib/os-release']);
  const o = rel ? osRelease(rel.data.toString('utf8')) : {};
  if (levelFrom === '' || level <= 1) {
    const byOs = levelFromOsRelease(o.ID, o.ID_LIKE, o.VERSION_ID);
    if (byOs !== undefined && byOs > level) {
      level = byOs;
      levelFrom = `os-release (${o.ID} ${o.VERSION_ID} is built for x86-64-v${byOs})`;
    }
  }
  if (levelFrom === '') {
    level = 1;
    levelFrom = 'no ISA marker and no known distribution level: baseline';
  }
  const bindPoints: Record<string, boolean> = {};
  for (const b of JOBAGENT_BINDS) {
    const p = await resolveIn(r, root, b.slice(1));
    bindPoints[b] = !!p && (await r.stat(p))?.type === 'dir';
  }
  return {
    path: given,
    resolved: root,
    arch,
    x86_64_level: arch === 'x86_64' ? level : 0,
    levelFrom: arch === 'x86_64' ? levelFrom : 'not x86-64',
    os: { id: o.ID ?? null, versionId: o.VERSION_ID ?? null },
    bindPoints,
  };
}
