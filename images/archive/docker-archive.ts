/**
 * docker-save archives, every variant: legacy (`<id>/layer.tar`, Docker <= 24), Docker 25+
 * (`blobs/sha256/<hex>` + `index.json`, legacy paths as symlinks), containerd-store archives
 * (gzip layers, nested index) and plain OCI archives without manifest.json.
 * Members are read in place by offset: nothing is copied out of the archive. Members named by a
 * digest (`blobs/sha256/<hex>`, `<hex>.json`) or reached through a descriptor must hash to it;
 * JSON members are size-bounded before they are buffered and must resolve to regular members.
 */
import path from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { indexTarFile, normalizeMemberName, readMember, type Member } from './tar-index.ts';
import { sha256, type ImageSource, type LayerBlob } from './image-source.ts';
import { checkBlob, checkConfig, checkDockerManifest, digestFromName, parseJson, type Descriptor } from './json-docs.ts';
import { MAX_CONFIG_JSON, MAX_INDEX_JSON } from './limits.ts';
import { pickManifest, type BlobStore } from './oci-index.ts';

const REEXPORT = 'The archive is incomplete or corrupted; export it again with docker save.';

interface Resolved extends Member {
  /** Normalized name of the regular member a path resolved to. */
  target: string;
}

export function openDockerArchive(file: string, kind: ImageSource['kind'] = 'docker-archive', source = file): ImageSource {
  let members: Map<string, Member>;
  try {
    members = indexTarFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read as a tar archive: ${code ?? (e as Error).message}`, { where: file, hint: 'Pass a docker save archive, an OCI layout directory or an engine image reference.' });
  }
  const at = (name: string) => `${file}: ${name}`;
  /** Follow symlinks / hardlinks inside the archive (Docker 25+ legacy paths) to a regular member. */
  const resolve = (name: string): Resolved => {
    let cur = normalizeMemberName(name);
    for (let depth = 0; depth <= 8; depth++) {
      const m = members.get(cur);
      if (!m) throw new UsageError(`archive has no member ${cur}${cur !== name ? ` (reached from ${name})` : ''}`, { where: file, hint: REEXPORT });
      if (m.type === 'file') return { ...m, target: cur };
      if (m.type === 'symlink') cur = normalizeMemberName(path.posix.join(path.posix.dirname(cur), m.linkname));
      else if (m.type === 'hardlink') cur = normalizeMemberName(m.linkname);
      else throw new UsageError(`member ${cur} is a ${m.type}, not a regular file`, { where: file, hint: REEXPORT });
    }
    throw new UsageError(`member ${name} is a chain of more than 8 links`, { where: file, hint: REEXPORT });
  };
  /** A JSON member, bounded before it is buffered; digest-checked when its name or descriptor gives one. */
  const readJsonMember = (name: string, max: number, desc?: Descriptor): { doc: unknown; bytes: Buffer; where: string } => {
    const m = resolve(name);
    const where = at(m.target === normalizeMemberName(name) ? m.target : `${name} -> ${m.target}`);
    if (m.size > max) throw new UsageError(`is ${m.size} bytes, more than the ${max} bytes allowed for it`, { where, hint: 'This is not a genuine image document; check where the archive came from.' });
    const bytes = readMember(file, m, max);
    const digest = desc?.digest ?? digestFromName(m.target);
    if (digest) checkBlob(bytes, digest, desc?.size, where);
    return { doc: parseJson(bytes, where), bytes, where };
  };
  const layerBlob = (name: string, i: number, diffId: string, desc?: Descriptor): LayerBlob => {
    const m = resolve(name);
    const digest = desc?.digest ?? digestFromName(m.target);
    if (desc?.size !== undefined && m.size !== desc.size) throw new UsageError(`blob is ${m.size} bytes but its descriptor says ${desc.size}`, { where: at(m.target), hint: 'The blob was altered or swapped; re-export the image from a trusted source.' });
    return { label: `layer ${i + 1} (${name})`, file, offset: m.offset, size: m.size, diffId, digest };
  };

  let config: ReturnType<typeof checkConfig>;
  let configBytes: Buffer;
  let layers: (diffIds: string[]) => LayerBlob[];
  let layerCount: number;
  let repoTags: string[] = [];
  let configWhere: string;
  if (members.has('manifest.json')) {
    const mj = readJsonMember('manifest.json', MAX_INDEX_JSON);
    const m = checkDockerManifest(mj.doc, mj.where);
    const c = readJsonMember(m.Config, MAX_CONFIG_JSON);
    configWhere = `${c.where} (config)`;
    config = checkConfig(c.doc, configWhere);
    configBytes = c.bytes;
    layerCount = m.Layers.length;
    layers = (ids) => m.Layers.map((name, i) => layerBlob(name, i, ids[i]));
    repoTags = m.RepoTags;
  } else if (members.has('index.json')) {
    const blobName = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;
    const store: BlobStore = {
      where: file,
      readJson: (d, max) => readJsonMember(blobName(d.digest), max, d).doc,
      label: (d) => at(blobName(d)),
    };
    const ij = readJsonMember('index.json', MAX_INDEX_JSON);
    const { manifest, refName } = pickManifest(store, ij.doc, ij.where);
    const c = readJsonMember(blobName(manifest.config.digest), MAX_CONFIG_JSON, manifest.config);
    configWhere = `${c.where} (config)`;
    config = checkConfig(c.doc, configWhere);
    configBytes = c.bytes;
    layerCount = manifest.layers.length;
    layers = (ids) => manifest.layers.map((l, i) => layerBlob(blobName(l.digest), i, ids[i], l));
    if (refName) repoTags = [refName];
  } else {
    throw new UsageError('neither manifest.json nor index.json in the archive', { where: file, hint: 'Pass a docker save archive or an OCI archive.' });
  }
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layerCount) {
    throw new UsageError(`config lists ${diffIds.length} diff_ids but the manifest ${layerCount} layers`, { where: configWhere, hint: 'The archive is inconsistent; export it again.' });
  }
  return { source, kind, config, configBytes, configDigest: sha256(configBytes), repoTags, layers: layers(diffIds), close: async () => {} };
}
