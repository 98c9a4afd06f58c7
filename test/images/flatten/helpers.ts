/**
 * Test helpers for the flatten suites: independent tree readers (node-tar's parser for tar
 * streams, lstat for directories), the comparison rules (Docker's init placeholders ignored),
 * a small layer/archive builder and docker helpers with the `gfflat-` prefix.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Parser } from 'tar';
import { execa } from 'execa';
import { encodeHeader, END_OF_ARCHIVE, padded, type EntryType, type TarHeader } from '../../../images/archive/tar-format.ts';

export const PREFIX = 'gfflat';

export interface TreeEntry {
  type: string; // file dir symlink char block fifo
  mode: number;
  uid: number;
  gid: number;
  size: number;
  hash?: string;
  link?: string;
  /** Hardlink group: the smallest path sharing this inode (only when the inode has > 1 name). */
  group?: string;
}

export type Tree = Map<string, TreeEntry>;

const NT: Record<string, string> = {
  File: 'file', OldFile: 'file', ContiguousFile: 'file', Directory: 'dir', SymbolicLink: 'symlink', CharacterDevice: 'char', BlockDevice: 'block', FIFO: 'fifo', Link: 'hardlink',
};

function norm(p: string): string {
  return p.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
}

/** Read a tar stream with node-tar's parser (independent of gridforge's reader). */
export async function treeFromTarStream(stream: NodeJS.ReadableStream): Promise<Tree> {
  const tree: Tree = new Map();
  const links: [string, string][] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({ strict: true });
    parser.on('entry', (e: any) => {
      const p = norm(e.path);
      const type = NT[e.type];
      if (!type) { e.resume(); return; }
      if (type === 'hardlink') {
        links.push([p, norm(e.linkpath)]);
        e.resume();
        return;
      }
      const h = crypto.createHash('sha256');
      e.on('data', (d: Buffer) => h.update(d));
      e.on('end', () => {
        if (p === '') return;
        tree.set(p, { type, mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, size: type === 'file' ? e.size : 0, hash: type === 'file' ? h.digest('hex') : undefined, link: type === 'symlink' ? e.linkpath : undefined });
      });
    });
    parser.on('end', resolve);
    parser.on('error', reject);
    stream.on('error', reject);
    stream.pipe(parser as any);
  });
  for (const [p, target] of links) {
    const t = tree.get(target);
    if (!t) throw new Error(`hardlink ${p} -> ${target}: target missing`);
    t.group = t.group ?? target;
    tree.set(p, { ...t, group: t.group });
  }
  // canonical group name = smallest path in the group
  const groups = new Map<string, string[]>();
  for (const [p, e] of tree) if (e.group) groups.set(e.group, [...(groups.get(e.group) ?? []), p]);
  for (const members of groups.values()) {
    const min = members.sort()[0];
    for (const m of members) tree.get(m)!.group = min;
  }
  return tree;
}

export async function treeFromTarFile(file: string, offset = 0, size?: number): Promise<Tree> {
  return treeFromTarStream(fs.createReadStream(file, size === undefined ? { start: offset } : { start: offset, end: offset + size - 1 }));
}

/** Read a directory tree with lstat (hardlinks grouped by inode). */
export function treeFromDir(root: string): Tree {
  const tree: Tree = new Map();
  const byIno = new Map<string, string[]>();
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    for (const name of fs.readdirSync(abs)) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        tree.set(r, { type: 'dir', mode, uid: st.uid, gid: st.gid, size: 0 });
        walk(r);
      } else if (st.isSymbolicLink()) {
        tree.set(r, { type: 'symlink', mode, uid: st.uid, gid: st.gid, size: 0, link: fs.readlinkSync(path.join(root, r)) });
      } else if (st.isFile()) {
        const data = fs.readFileSync(path.join(root, r));
        tree.set(r, { type: 'file', mode, uid: st.uid, gid: st.gid, size: st.size, hash: crypto.createHash('sha256').update(data).digest('hex') });
        if (st.nlink > 1) byIno.set(`${st.dev}:${st.ino}`, [...(byIno.get(`${st.dev}:${st.ino}`) ?? []), r]);
      } else if (st.isFIFO()) {
        tree.set(r, { type: 'fifo', mode, uid: st.uid, gid: st.gid, size: 0 });
      } else {
        tree.set(r, { type: st.isCharacterDevice() ? 'char' : 'block', mode, uid: st.uid, gid: st.gid, size: 0 });
      }
    }
  };
  walk('');
  for (const members of byIno.values()) {
    if (members.length < 2) continue;
    const min = members.sort()[0];
    for (const m of members) tree.get(m)!.group = min;
  }
  return tree;
}

/** Paths Docker adds to every exported container (init layer) or that only exist at run time. */
export function isDockerPlaceholder(p: string): boolean {
  return p === '.dockerenv' || p === 'dev' || p.startsWith('dev/') || p === 'proc' || p.startsWith('proc/') || p === 'sys' || p.startsWith('sys/')
    || p === 'etc/hosts' || p === 'etc/hostname' || p === 'etc/resolv.conf' || p === 'etc/mtab';
}

export interface CompareOptions {
  /** Paths only `actual` may have (documented additions). */
  extraAllowed?: (p: string) => boolean;
  /** Ignore in both. */
  ignore?: (p: string) => boolean;
  /** Transform the expected entry (e.g. sandbox mode fix-ups); return null to expect it absent. */
  expect?: (p: string, e: TreeEntry) => TreeEntry | null;
  /** Compare hardlink groups too. */
  groups?: boolean;
}

/** Differences between two trees, as readable lines (empty = equal). */
export function diffTrees(expected: Tree, actual: Tree, opts: CompareOptions = {}): string[] {
  const out: string[] = [];
  const ign = (p: string) => isDockerPlaceholder(p) || (opts.ignore?.(p) ?? false);
  for (const [p, e0] of expected) {
    if (ign(p)) continue;
    const e = opts.expect ? opts.expect(p, e0) : e0;
    const a = actual.get(p);
    if (!e) {
      if (a) out.push(`${p}: should be absent, found ${a.type}`);
      continue;
    }
    if (!a) { out.push(`${p}: missing (expected ${e.type})`); continue; }
    const fields: (keyof TreeEntry)[] = ['type', 'mode', 'uid', 'gid', 'size', 'hash', 'link'];
    if (opts.groups) fields.push('group');
    for (const f of fields) {
      if (f === 'mode' && e.type === 'symlink') continue;
      if (e[f] !== a[f]) out.push(`${p}: ${f} expected ${fmt(f, e[f])} got ${fmt(f, a[f])}`);
    }
  }
  for (const p of actual.keys()) {
    if (ign(p) || expected.has(p)) continue;
    if (opts.extraAllowed?.(p)) continue;
    out.push(`${p}: unexpected extra ${actual.get(p)!.type}`);
  }
  return out;
}

function fmt(f: string, v: unknown): string {
  return f === 'mode' && typeof v === 'number' ? v.toString(8) : String(v);
}

// ------------------------------------------------------------------ docker

export async function docker(args: string[], input?: string) {
  return execa('docker', args, { input, reject: true });
}

export async function dockerBuild(tag: string, dockerfile: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-ctx-`));
  try {
    fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    await execa('docker', ['build', '-q', '-t', tag, dir], { env: { DOCKER_BUILDKIT: '0' } });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `docker export` of a fresh container of `image`, read as a tree. */
export async function exportTree(image: string): Promise<Tree> {
  const name = `${PREFIX}-exp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await execa('docker', ['create', '--name', name, image, '/x']);
  try {
    const child = spawn('docker', ['export', name], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tree = await treeFromTarStream(child.stdout);
    await new Promise((r) => child.on('close', r));
    return tree;
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
  }
}

export async function removeImages(refs: string[]): Promise<void> {
  if (refs.length) await execa('docker', ['rmi', '-f', ...refs], { reject: false });
}

// ------------------------------------------------------------------ building layers and archives

export interface E {
  path: string;
  type?: EntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  data?: string | Buffer;
  link?: string;
  xattrs?: Record<string, Buffer>;
  mtime?: number;
}

export function layerTar(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? (e.path.endsWith('/') ? 'dir' : 'file');
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const h: TarHeader = {
      path: e.path, type, mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0,
      size: type === 'file' ? data.length : 0, mtime: e.mtime ?? 1_700_000_000, linkname: e.link ?? '', devmajor: 0, devminor: 0,
      xattrs: new Map(Object.entries(e.xattrs ?? {})),
    };
    parts.push(encodeHeader(h));
    if (type === 'file') parts.push(data, Buffer.alloc(padded(data.length) - data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export function sha256hex(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

function member(name: string, data: Buffer, type: EntryType = 'file', link = ''): Buffer {
  const h = encodeHeader({ path: name, type, mode: 0o644, uid: 0, gid: 0, size: type === 'file' ? data.length : 0, mtime: 0, linkname: link, devmajor: 0, devminor: 0, xattrs: new Map() });
  return type === 'file' ? Buffer.concat([h, data, Buffer.alloc(padded(data.length) - data.length)]) : h;
}

export interface ImageSpec {
  layers: Buffer[]; // uncompressed layer tars
  tag?: string;
  config?: Record<string, unknown>;
  /** Override diff_ids (to test mismatches). */
  diffIds?: string[];
}

export function imageConfig(spec: ImageSpec): Buffer {
  return Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2026-01-01T00:00:00Z',
    config: spec.config ?? { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: spec.diffIds ?? spec.layers.map((l) => `sha256:${sha256hex(l)}`) },
    history: spec.layers.map(() => ({ created_by: 'test' })),
  }));
}

/** A legacy (Docker <= 24) docker-save archive. */
export function legacyArchive(spec: ImageSpec): Buffer {
  const cfg = imageConfig(spec);
  const parts: Buffer[] = [];
  const layerPaths = spec.layers.map((l, i) => `l${i}/layer.tar`);
  spec.layers.forEach((l, i) => parts.push(member(`l${i}/`, Buffer.alloc(0), 'dir'), member(layerPaths[i], l)));
  parts.push(member('config.json', cfg));
  parts.push(member('manifest.json', Buffer.from(JSON.stringify([{ Config: 'config.json', RepoTags: spec.tag ? [spec.tag] : null, Layers: layerPaths }]))));
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
