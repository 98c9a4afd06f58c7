/**
 * Where the VO-box image comes from: a local archive (`docker save` output, plain or gzip), an image
 * in the operator's local Docker engine (streamed with `docker save`), or a registry reference the
 * host pulls. Resolves the image ID up front so "already there" is a cheap comparison.
 */
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { list } from 'tar';
import { execa } from 'execa';
import { connect } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { DockerApi } from './docker-api.ts';
import { UsageError } from '../base/errors.ts';

export type ImageSource =
  | { kind: 'archive'; path: string; id: string; repoTags: string[] }
  | { kind: 'local-engine'; ref: string; id: string }
  | { kind: 'registry'; ref: string };

export function isArchivePath(image: string): boolean {
  return image.startsWith('/') && /\.(tar|tar\.gz|tgz)$/.test(image);
}

/**
 * manifest.json of a plain (uncompressed) tar, found by hopping from header to header without
 * reading file data (docker save writes it last; a 1 GB archive costs a few thousand small reads).
 * Returns undefined when the file is not a plain tar (compressed), null when there is no manifest.
 */
export function scanPlainTar(path: string, wanted = 'manifest.json'): string | null | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const hdr = Buffer.alloc(512);
    let off = 0;
    let paxSize: number | null = null;
    let paxPath: string | null = null;
    while (off + 512 <= size) {
      if (readSync(fd, hdr, 0, 512, off) !== 512) return undefined;
      if (hdr.every((b) => b === 0)) return null;
      if (hdr.toString('latin1', 257, 262) !== 'ustar') return undefined;
      const sizeField = hdr.subarray(124, 136);
      let len = 0;
      if (sizeField[0] & 0x80) for (let i = 4; i < 12; i++) len = len * 256 + sizeField[i];
      else len = parseInt(sizeField.toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
      if (paxSize !== null) len = paxSize;
      const type = String.fromCharCode(hdr[156] || 48);
      const prefix = hdr.toString('utf8', 345, 500).replace(/\0.*$/s, '');
      const name = paxPath ?? (prefix ? `${prefix}/` : '') + hdr.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      paxSize = null;
      paxPath = null;
      if (type === 'x') {
        const body = Buffer.alloc(len);
        readSync(fd, body, 0, len, off + 512);
        for (const rec of body.toString('utf8').split('\n')) {
          const m = /^\d+ (path|size)=(.*)$/.exec(rec);
          if (m?.[1] === 'path') paxPath = m[2];
          if (m?.[1] === 'size') paxSize = Number(m[2]);
        }
      } else if (type === 'L') {
        // GNU long name for the next entry
        const body = Buffer.alloc(len);
        readSync(fd, body, 0, len, off + 512);
        paxPath = body.toString('utf8').replace(/\0.*$/s, '');
      } else if ((type === '0' || type === '\0') && name.replace(/^\.\//, '') === wanted) {
        const body = Buffer.alloc(len);
        readSync(fd, body, 0, len, off + 512);
        return body.toString('utf8');
      }
      off += 512 + Math.ceil(len / 512) * 512;
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Image ID (sha256:<config digest>) and tags from a docker-save archive's manifest.json. */
export async function archiveImageInfo(path: string): Promise<{ id: string; repoTags: string[] }> {
  let manifest: string | null = null;
  const plain = scanPlainTar(path);
  if (typeof plain === 'string') manifest = plain;
  else if (plain === undefined) await list({
    file: path,
    onReadEntry: (entry) => {
      if (entry.path === 'manifest.json' || entry.path === './manifest.json') {
        const bufs: Buffer[] = [];
        entry.on('data', (d: Buffer) => bufs.push(d));
        entry.on('end', () => (manifest = Buffer.concat(bufs).toString('utf8')));
      } else entry.resume();
    },
  });
  if (!manifest) throw new UsageError('not a docker image archive (no manifest.json)', { where: path, hint: 'Create the archive with `docker save <ref> -o file.tar`.' });
  const m = JSON.parse(manifest) as { Config: string; RepoTags?: string[] }[];
  if (!m.length) throw new UsageError('image archive holds no image', { where: path, hint: 'Create the archive with `docker save <ref> -o file.tar`.' });
  const hex = /([0-9a-f]{64})/.exec(m[0].Config)?.[1];
  if (!hex) throw new UsageError(`cannot read the image config name ${m[0].Config}`, { where: `${path}: manifest.json` });
  return { id: `sha256:${hex}`, repoTags: m[0].RepoTags ?? [] };
}

export async function resolveImageSource(image: string, where: string): Promise<ImageSource> {
  if (isArchivePath(image)) {
    if (!existsSync(image) || !statSync(image).isFile()) throw new UsageError(`image archive ${image} does not exist`, { where, hint: 'Give an existing docker-save archive, or an image reference.' });
    const info = await archiveImageInfo(image);
    return { kind: 'archive', path: image, ...info };
  }
  const local = localEngine();
  if (local) {
    try {
      await local.negotiate();
      const ii = await local.inspectImage(image);
      if (ii?.Id) return { kind: 'local-engine', ref: image, id: ii.Id as string };
    } catch {
      /* no local engine: treat as a registry reference */
    }
  }
  return { kind: 'registry', ref: image };
}

/** The operator's local Docker engine (DOCKER_HOST=unix://... or /var/run/docker.sock), through its API. */
export function localEngine(): DockerApi | null {
  const h = process.env.DOCKER_HOST;
  const path = h ? (h.startsWith('unix://') ? h.slice(7) : null) : '/var/run/docker.sock';
  if (!path || !existsSync(path)) return null;
  return new DockerApi(
    () =>
      new Promise<Duplex>((resolve, reject) => {
        const s = connect(path, () => resolve(s));
        s.once('error', reject);
      }),
    `local engine ${path}`,
  );
}

/** The bytes to send to the host's /images/load. */
export function imageStream(src: ImageSource): { stream: Readable; done: Promise<void> } {
  if (src.kind === 'archive') return { stream: createReadStream(src.path), done: Promise.resolve() };
  if (src.kind === 'local-engine') {
    // `docker save` of the local engine, streamed as it is produced (the CLI keeps its tags).
    const p = execa('docker', ['save', src.ref], { buffer: false, stdout: 'pipe', stderr: 'pipe', reject: false });
    return {
      stream: p.stdout as Readable,
      done: p.then((r) => {
        if (r.exitCode !== 0) throw new Error(`docker save ${src.ref} failed: ${r.stderr}`);
      }),
    };
  }
  throw new Error('registry images are pulled by the host, not streamed');
}
