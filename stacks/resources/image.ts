/**
 * The VO-box image on the host: pulled by the host (registry reference) or streamed over SSH into
 * the host's /images/load (local archive, or `docker save` of the operator's engine). Images are
 * kept on destroy (the next deploy reuses them).
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { GridforgeError } from '../../base/errors.ts';
import { DockerApi } from '../docker-api.ts';
import { imageStream, type DeployImage } from '../deploy-image.ts';
import type { Resource } from './types.ts';

/** What the container is created from: the reference (registry, local engine) or the loaded ID (archive). */
export function imageRefOf(src: DeployImage): string {
  return src.kind === 'archive' ? src.id : src.ref;
}

/** The image ID the container should run, when known before deploying (null: a registry image not yet on the host). */
export function desiredImageId(o: { image: { source: DeployImage; hostId: string | null } }): string | null {
  return o.image.source.kind === 'registry' ? o.image.hostId : o.image.source.id;
}

export const image: Resource = {
  kinds: ['image'],
  describe: () => 'the VO-box image (pulled by the host, or streamed over SSH and loaded)',
  diff(_d, o) {
    const src = o.image.source;
    if (o.image.hostId) return [];
    if (src.kind === 'registry') return [{ kind: 'image', action: 'pull', target: src.ref, detail: 'pull on the host' }];
    return [{ kind: 'image', action: 'load', target: src.kind === 'archive' ? src.path : src.ref, detail: `stream over SSH and docker load (${src.id.slice(0, 19)})` }];
  },
  async apply(s, _d, o, changes, log) {
    const src = o.image.source;
    if (!changes.length) return;
    if (src.kind === 'registry') {
      log(`pulling ${src.ref} on the host`);
      const [from, tag] = splitRef(src.ref);
      const r = await s.docker.raw('POST', `/v${s.docker.apiVersion}/images/create?fromImage=${encodeURIComponent(from)}&tag=${encodeURIComponent(tag)}`);
      const err = r.status >= 400 ? r.body.toString() : DockerApi.progressErrors(r.body);
      if (err) throw new GridforgeError(`cannot pull ${src.ref} on ${s.ssh.label}: ${err.trim()}`, { where: s.ssh.label, hint: 'Check the reference and the host registry access, or give a local archive / local image.' });
      return;
    }
    log(`streaming ${src.kind === 'archive' ? src.path : src.ref} to ${s.ssh.label} (docker load)`);
    await loadImage(s.docker, src, s.ssh.label, log);
  },
  async destroy() {
    return { removed: [], kept: [] };
  },
};

/** Bytes that pass through, counted on the way (no 'data' listener: it must not read ahead of the pipe). */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Stream an archive / `docker save` into the host's /images/load and check the image is there.
 * The source is opened only once the forwarded socket is up (docker-api.ts raw calls the opener):
 * a stream that starts flowing before the request exists loses its first bytes, which dockerd
 * reports as "archive/tar: invalid tar header" (opening an SSH channel across a WAN takes a round trip).
 */
export async function loadImage(docker: DockerApi, src: Exclude<DeployImage, { kind: 'registry' }>, where: string, log: (m: string) => void = () => {}): Promise<void> {
  const counter = new ByteCounter();
  let done: Promise<void> = Promise.resolve();
  const open = () => {
    const img = imageStream(src);
    done = img.done;
    done.catch(() => {}); // awaited below on success; a failed request reports its own error
    // pipeline: a read error fails the upload (no half-sent body left waiting), a failed upload closes the source.
    pipeline(img.stream, counter, () => {});
    return counter;
  };
  const t0 = Date.now();
  const mib = () => (counter.bytes / 1048576).toFixed(0);
  // Progress every few seconds while the image streams (hundreds of MiB over SSH).
  const tick = setInterval(() => log(`  streamed ${mib()} MiB (${(counter.bytes / 1048576 / ((Date.now() - t0) / 1000)).toFixed(1)} MiB/s)`), 5000);
  let r;
  try {
    r = await docker.raw('POST', `/v${docker.apiVersion}/images/load?quiet=1`, open);
  } finally {
    clearInterval(tick);
  }
  log(`  loaded ${mib()} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const sourceErr = await done.then(
    () => null,
    (e: Error) => e.message,
  );
  const err = r.status >= 400 ? r.body.toString() : DockerApi.progressErrors(r.body);
  // The daemon's verdict first: a source that stopped early because the daemon hung up only says "broken pipe".
  if (err) throw new GridforgeError(`docker load on ${where} failed: ${err.trim()}`, { where, detail: sourceErr ?? undefined });
  if (sourceErr) throw new GridforgeError(`cannot stream the image to ${where}: ${sourceErr}`, { where });
  if (!(await docker.inspectImage(src.id))) throw new GridforgeError(`image ${src.id} not present after load`, { where });
}

function splitRef(ref: string): [string, string] {
  const at = ref.indexOf('@');
  if (at > 0) return [ref, ''];
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}
