/**
 * The identity of an image archive without unpacking it: the image ID (sha256 of the config, what
 * `docker image inspect` reports) and the RepoTags, as the readers of this folder see them
 * (docker-archive.ts for every docker-save / OCI archive variant, digests checked). A compressed
 * archive (`docker save | gzip`) is decompressed once into a private spool file beside the system
 * temporaries, removed afterwards and on SIGINT/SIGTERM (base/cleanup.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { removeOnInterrupt } from '../../base/cleanup.ts';
import { GridforgeError } from '../../base/errors.ts';
import { decompressRange, detectFileRange } from './compression.ts';
import { openDockerArchive } from './docker-archive.ts';

export interface ArchiveIdentity {
  /** `sha256:<hex>` of the image config: the image ID. */
  id: string;
  repoTags: string[];
}

/** Image ID and RepoTags of a docker-save (or OCI) archive file, plain, gzip or zstd. */
export async function readArchiveIdentity(file: string): Promise<ArchiveIdentity> {
  const size = fs.statSync(file).size;
  const compression = size > 0 ? detectFileRange(file, 0, size) : 'none';
  if (compression === 'none') return identityOf(file, file);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gridforge-identity-'));
  const release = removeOnInterrupt(dir);
  try {
    const spool = path.join(dir, 'archive.tar');
    const d = decompressRange(file, 0, size, compression);
    try {
      await Promise.all([pipeline(d.stream, fs.createWriteStream(spool, { flags: 'wx', mode: 0o600 })), d.done]);
    } catch (e) {
      throw new GridforgeError(`cannot decompress the ${compression} archive: ${(e as Error).message}`, { where: file, hint: 'Check the file is a complete compressed docker save archive.' });
    }
    return identityOf(spool, file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    release();
  }
}

function identityOf(tarFile: string, source: string): ArchiveIdentity {
  try {
    const img = openDockerArchive(tarFile, 'docker-archive', source);
    return { id: img.configDigest, repoTags: img.repoTags };
  } catch (e) {
    // Errors from the spool name the spool; the user gave the compressed file.
    if (tarFile !== source && e instanceof GridforgeError && e.where?.startsWith(tarFile)) {
      const Ctor = e.constructor as new (m: string, d: object) => GridforgeError;
      throw new Ctor(e.message, { where: source + e.where.slice(tarFile.length), hint: e.hint, detail: e.detail, cause: e });
    }
    throw e;
  }
}
