/**
 * Machinery of peer-bugs.test.ts (the peers' flattener bug reproducers as oracle fixtures): a tiny
 * base image (dash, a few coreutils, perl and setcap with their libraries, copied out of
 * gridforge/base:debian-bookworm by a two-stage docker build), so that every fixture image stays a
 * few MiB and can be built, exported, flattened, sandboxed and synced within the file's budget;
 * hand-made images loaded with `docker load`; the comparison rules of a tree read back from a
 * CernVM-FS repository (the sandbox rules plus what images/sandbox/README.md and
 * release/sandbox-to-repo.ts document: no FIFOs, hard links only within a directory); and
 * security.capability values read with GNU tar --xattrs and getfattr (independent of gridforge).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { indexTarFile } from '../../../images/archive/tar-index.ts';
import { legacyArchive, PREFIX, type Tree, type TreeEntry } from './helpers.ts';

/** Binaries of the tiny base (from gridforge/base:debian-bookworm, plus the host's setcap). */
const BASE_TOOLS = ['dash', 'rm', 'ln', 'mkdir', 'touch', 'chmod', 'chown', 'cp', 'mv', 'cat', 'mknod', 'mkfifo', 'perl', 'setcap'];

const BASE_DOCKERFILE = `
FROM gridforge/base:debian-bookworm AS src
COPY setcap /usr/local/sbin/setcap
RUN set -e; mkdir -p /out/bin /out/etc /out/tmp; chmod 1777 /out/tmp; \\
 for b in ${BASE_TOOLS.join(' ')}; do p=$(command -v $b); cp "$p" /out/bin/; \\
   for l in $(ldd "$p" | grep -o '/[^ ]*'); do cp --parents -L "$l" /out/; done; done; \\
 ln -s dash /out/bin/sh; echo 'root:x:0:0:root:/:/bin/sh' > /out/etc/passwd
FROM scratch
COPY --from=src /out/ /
ENV PATH=/bin
`;

/** Build the tiny base image as `tag` (a few MiB, one layer). */
export async function buildTinyBase(tag: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-peerbase-`));
  try {
    fs.copyFileSync('/usr/sbin/setcap', path.join(dir, 'setcap'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'), BASE_DOCKERFILE);
    await execa('docker', ['build', '-q', '-t', tag, dir], { env: { DOCKER_BUILDKIT: '0' } });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A hand-made image (uncompressed layer tars) into the engine with `docker load`. */
export async function loadHandMade(tag: string, layers: Buffer[], work: string): Promise<void> {
  const file = path.join(work, `${tag.replace(/[^a-z0-9]/gi, '_')}.tar`);
  fs.writeFileSync(file, legacyArchive({ tag, layers, config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] } }));
  try {
    await execa('docker', ['load', '-i', file]);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Offset and size of the single layer inside a docker-save archive written by flattenToArchive. */
export function layerOf(archive: string): { offset: number; size: number } {
  const idx = indexTarFile(archive);
  const m = idx.get('manifest.json')!;
  const manifest = JSON.parse(fs.readFileSync(archive).subarray(m.offset, m.offset + m.size).toString());
  const l = idx.get(manifest[0].Layers[0])!;
  return { offset: l.offset, size: l.size };
}

/** `security.capability` of every file below `dir`, as getfattr reports it: relative path -> hex. */
export async function capsOfDir(dir: string): Promise<Map<string, string>> {
  const r = await execa('getfattr', ['-R', '-h', '-n', 'security.capability', '-e', 'hex', '.'], { cwd: dir, reject: false });
  const out = new Map<string, string>();
  for (const block of r.stdout.trim().split(/\n\s*\n/)) {
    const lines = block.trim().split('\n');
    const file = lines.find((l) => l.startsWith('# file: '));
    const value = lines.find((l) => l.startsWith('security.capability=0x'));
    if (file && value) out.set(file.slice('# file: '.length).replace(/^\.\//, ''), value.slice('security.capability=0x'.length));
  }
  return out;
}

/** Extract a tar (a buffer or `docker export` of a fresh container) with GNU tar --xattrs into `dest`. */
export async function extractWithXattrs(input: Buffer, dest: string): Promise<void> {
  fs.mkdirSync(dest, { recursive: true });
  await execa('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-xpf', '-', '-C', dest], { input });
}

export async function exportWithXattrs(image: string, dest: string): Promise<void> {
  const name = `${PREFIX}-peerexp-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
  await execa('docker', ['create', '--name', name, image, '/x']);
  try {
    fs.mkdirSync(dest, { recursive: true });
    await execa('sh', ['-c', `docker export ${name} | tar --xattrs --xattrs-include='*' --numeric-owner -xpf - -C "$1"`, 'sh', dest]);
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
  }
}

/**
 * The entries of a layer tar as `<typeflag> <path>[ -> <linkname>]`, read straight from the 512-byte
 * headers (ustar name/prefix/linkname, PAX path/linkpath): node-tar drops the whiteouts Docker 20.10
 * writes for overlayfs' shared whiteout inode (typeflag 0 with a linkname), and these lines must
 * show them as they are.
 */
export function rawEntries(tar: Buffer): string[] {
  const out: string[] = [];
  const str = (b: Buffer) => { const z = b.indexOf(0); return b.subarray(0, z < 0 ? b.length : z).toString('utf8'); };
  let pos = 0;
  let pax: Record<string, string> = {};
  while (pos + 512 <= tar.length) {
    const h = tar.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(h.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 0x30);
    const data = tar.subarray(pos + 512, pos + 512 + size);
    pos += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      pax = {};
      for (let i = 0; i < data.length;) {
        const sp = data.indexOf(0x20, i);
        const len = parseInt(data.subarray(i, sp).toString(), 10);
        const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
        const eq = rec.indexOf('=');
        pax[rec.slice(0, eq)] = rec.slice(eq + 1);
        i += len;
      }
      continue;
    }
    const prefix = str(h.subarray(345, 500));
    const name = (pax.path ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)))).replace(/\/$/, '');
    const link = pax.linkpath ?? str(h.subarray(157, 257));
    out.push(`${type} ${name}${link ? ` -> ${link}` : ''}`);
    pax = {};
  }
  return out;
}

/** A mode as the sandbox writers leave it (images/sandbox/fs-sink.ts, write-tree.ts). */
export function sandboxExpect(e: TreeEntry): TreeEntry | null {
  if (e.type === 'char' || e.type === 'block') return null; // never in sandboxes
  if (e.type === 'dir') return { ...e, mode: e.mode | 0o700 };
  if (e.type === 'file' || e.type === 'fifo') return { ...e, mode: (e.mode & ~0o6000) | 0o600 };
  return e;
}

/**
 * What a tree read back from the repository should hold for an exported entry: the sandbox rules,
 * no FIFOs (release/sandbox-to-repo.ts), and hard links only among names in the same directory
 * (CernVM-FS links within a directory; across directories the repository holds copies).
 */
export function repoExpect(exported: Tree): (p: string, e: TreeEntry) => TreeEntry | null {
  return (p, e0) => {
    const e = sandboxExpect(e0);
    if (!e || e.type === 'fifo') return null;
    if (!e.group) return e;
    const dir = path.posix.dirname(p);
    const peers = [...exported].filter(([q, x]) => x.group === e0.group && path.posix.dirname(q) === dir && x.type !== 'fifo').map(([q]) => q).sort();
    return { ...e, group: peers.length > 1 ? peers[0] : undefined };
  };
}
