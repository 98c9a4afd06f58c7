/**
 * Where the VO-box image of a deploy comes from (DeployImage): a local archive (`docker save`
 * output, plain or compressed), an image in the operator's local Docker engine (streamed with
 * `docker save`), or a registry reference the host pulls. The image ID is resolved up front so
 * "already there" is a cheap comparison. Archives are read only through images/archive/ (the one
 * reader per format); images/archive/image-source.ts ImageSource is the flattener's input, not this.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { execa } from 'execa';
import { connect } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { DockerApi } from './docker-api.ts';
import { UsageError } from '../base/errors.ts';
import { readArchiveIdentity, type ArchiveIdentity } from '../images/archive/image-identity.ts';

export type DeployImage =
  | { kind: 'archive'; path: string; id: string; repoTags: string[] }
  | { kind: 'local-engine'; ref: string; id: string }
  | { kind: 'registry'; ref: string };

export function isArchivePath(image: string): boolean {
  return image.startsWith('/') && /\.(tar|tar\.gz|tgz)$/.test(image);
}

/** Image ID (sha256:<config digest>) and tags of a docker-save archive (images/archive/image-identity.ts). */
export function archiveImageInfo(path: string): Promise<ArchiveIdentity> {
  return readArchiveIdentity(path);
}

export async function resolveDeployImage(image: string, where: string): Promise<DeployImage> {
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

/** The bytes to send to the host's /images/load (dockerd accepts plain and compressed archives). */
export function imageStream(src: DeployImage): { stream: Readable; done: Promise<void> } {
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
