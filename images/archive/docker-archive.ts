/**
 * docker-save archives, every variant: legacy (`<id>/layer.tar`, Docker <= 24), Docker 25+
 * (`blobs/sha256/<hex>` + `index.json`, legacy paths as symlinks), containerd-store archives
 * (gzip layers, nested index) and plain OCI archives without manifest.json.
 * Members are read in place by offset: nothing is copied out of the archive.
 */
import path from 'node:path';
import { UsageError } from '../../scripts/lib/errors.ts';
import { indexTarFile, normalizeMemberName, readMember, type Member } from './tar-index.ts';
import { sha256, type ImageConfig, type ImageSource, type LayerBlob } from './image-source.ts';
import { pickManifest, type BlobStore } from './oci-index.ts';

function parseJson(buf: Buffer, where: string): any {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new UsageError(`not valid JSON (${(e as Error).message})`, { where, hint: 'The archive is corrupted; export it again with docker save.' });
  }
}

export function openDockerArchive(file: string, kind: ImageSource['kind'] = 'docker-archive', source = file): ImageSource {
  let members: Map<string, Member>;
  try {
    members = indexTarFile(file);
  } catch (e) {
    throw new UsageError(`cannot read as a tar archive: ${(e as Error).message}`, { where: file, hint: 'Pass a docker save archive, an OCI layout directory or an engine image reference.' });
  }
  const resolve = (name: string, depth = 0): Member => {
    const m = members.get(normalizeMemberName(name));
    if (!m) throw new UsageError(`archive has no member ${name}`, { where: file, hint: 'The archive is incomplete; export it again with docker save.' });
    if ((m.type === 'symlink' || m.type === 'hardlink') && depth < 8) {
      const target = m.type === 'symlink' ? path.posix.join(path.posix.dirname(normalizeMemberName(name)), m.linkname) : m.linkname;
      return resolve(target, depth + 1);
    }
    return m;
  };
  const manifestMember = members.get('manifest.json');
  let configBytes: Buffer;
  let layerNames: string[];
  let repoTags: string[] = [];
  if (manifestMember) {
    const manifest = parseJson(readMember(file, manifestMember), `${file}: manifest.json`);
    if (!Array.isArray(manifest) || manifest.length === 0) throw new UsageError('manifest.json lists no image', { where: `${file}: manifest.json`, hint: 'Export one image with docker save <ref>.' });
    const m = manifest[0];
    configBytes = readMember(file, resolve(m.Config));
    layerNames = m.Layers;
    repoTags = m.RepoTags ?? [];
  } else if (members.has('index.json')) {
    const store: BlobStore = {
      where: file,
      readJson: (d) => parseJson(readMember(file, resolve(`blobs/${d.replace(':', '/')}`)), `${file}: blobs/${d}`),
      locate: (d) => ({ file, ...resolve(`blobs/${d.replace(':', '/')}`), label: `blobs/${d.replace(':', '/')}` }),
    };
    const { manifest, refName } = pickManifest(store, parseJson(readMember(file, resolve('index.json')), `${file}: index.json`));
    configBytes = readMember(file, resolve(`blobs/${manifest.config.digest.replace(':', '/')}`));
    layerNames = manifest.layers.map((l) => `blobs/${l.digest.replace(':', '/')}`);
    if (refName) repoTags = [refName];
  } else {
    throw new UsageError('neither manifest.json nor index.json in the archive', { where: file, hint: 'Pass a docker save archive or an OCI archive.' });
  }
  const config = parseJson(configBytes, `${file}: config`) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layerNames.length) {
    throw new UsageError(`config lists ${diffIds.length} diff_ids but the manifest ${layerNames.length} layers`, { where: file, hint: 'The archive is inconsistent; export it again.' });
  }
  const layers: LayerBlob[] = layerNames.map((name, i) => {
    const m = resolve(name);
    return { label: `layer ${i + 1} (${name})`, file, offset: m.offset, size: m.size, diffId: diffIds[i] };
  });
  return { source, kind, config, configBytes, configDigest: sha256(configBytes), repoTags, layers, close: async () => {} };
}
