/**
 * Flatten an image to one layer (images/flatten/README.md): `flattenToEngine`, `flattenToArchive`,
 * `flattenToOci`. Input: engine reference, docker-save archive (any variant) or OCI layout dir.
 * The final tree is computed from layer headers (oldest first); surviving file contents are then
 * streamed from the source blobs straight into the output. Nothing is materialised on disk.
 * Outputs are written to random exclusive temporaries beside them (base/safe-fs.ts) that SIGINT /
 * SIGTERM remove (base/cleanup.ts); an existing OCI directory is replaced only when it is a
 * previous result of flattenToOci, or with `force`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { onInterrupt, removeOnInterrupt } from '../../base/cleanup.ts';
import { checkOutputTarget, makeTempDirBeside, openExclusive, readBoundedFile, tempNameBeside } from '../../base/safe-fs.ts';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { noProgress } from '../../base/progress.ts';
import { countEntries } from '../layer/tree.ts';
import { loadImageTree, type ImageTree, type ImageTreeOptions } from '../layer/image-tree.ts';
import { flatConfig, SOURCE_LABEL } from './image-config.ts';
import { layerTarChunks } from './layer-tar.ts';
import { END_OF_ARCHIVE, hex, makeBlobs, member, memberHeader, padding, splitRef } from './outer-archive.ts';
import { checkFreeSpace } from './free-space.ts';

export { SOURCE_LABEL };

export interface FlattenOptions extends ImageTreeOptions {
  /** Engine reference, docker-save archive or OCI layout directory. */
  source: string;
  /** Name of the result; default: the source reference with `-flat` appended to its tag. */
  tag?: string;
  /** flattenToOci: replace an existing non-empty directory even if it is not a previous result. */
  force?: boolean;
}

export interface FlattenResult {
  /** The tag given to the result (engine: the loaded reference). */
  ref?: string;
  /** Image ID of the result: sha256 of its config. */
  digest: string;
  /** Image ID of the source. */
  sourceDigest: string;
  /** DiffID (= digest, uncompressed) of the single layer. */
  diffId: string;
  layerSize: number;
  entries: number;
  sourceLayers: number;
  /** Output path (archive / OCI dir). */
  output?: string;
  /** Entries a lenient policy let through (`missingHardlinkTarget: 'empty'`), one line each. */
  warnings: string[];
}

/** `repo:tag` -> `repo:tag-flat` (no tag -> `latest-flat`). */
export function defaultFlatTag(ref: string): string {
  const { repo, tag } = splitRef(ref);
  return `${repo}:${tag}-flat`;
}

/** A tag is passed to docker as an argument: one starting with `-` would be read as an option. */
export function checkTag(tag: string | undefined): void {
  if (tag !== undefined && (tag === '' || tag.startsWith('-') || /\s/.test(tag))) {
    throw new UsageError(`${JSON.stringify(tag)} is not an image reference`, { where: '--tag', hint: 'Pass a name like repo/name:tag (not empty, no spaces, not starting with "-").' });
  }
}

function resolveTag(tree: ImageTree, opts: FlattenOptions, required: boolean): string | undefined {
  if (opts.tag) return opts.tag;
  const base = tree.src.kind === 'engine' ? tree.src.source : tree.src.repoTags[0];
  if (base) return defaultFlatTag(base);
  if (required) throw new UsageError('the source names no image, so there is no default tag', { where: opts.source, hint: 'Pass --tag <repo:tag>.' });
  return undefined;
}

async function withTree<T>(opts: FlattenOptions, fn: (tree: ImageTree) => Promise<T>): Promise<T> {
  const tree = await loadImageTree(opts.source, opts);
  try {
    return await fn(tree);
  } finally {
    await tree.close();
  }
}

async function runDocker(args: string[], input: Readable | Buffer, where: string): Promise<string> {
  const child = spawn('docker', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number>((res, rej) => { child.on('error', rej); child.on('close', (c) => res(c ?? 1)); });
  try {
    if (Buffer.isBuffer(input)) child.stdin.end(input);
    else await pipeline(input, child.stdin);
  } catch (e) {
    child.kill();
    await exited.catch(() => 0);
    throw new GridforgeError(`docker ${args[0]} failed: ${stderr.trim() || (e as Error).message}`, { where, hint: 'Check that dockerd is running and has disk space.' });
  }
  const code = await exited;
  if (code !== 0) throw new GridforgeError(`docker ${args[0]} failed: ${stderr.trim()}`, { where, hint: 'Check that dockerd is running and has disk space.' });
  return stdout;
}

/**
 * Into the engine in two steps, so the layer is written once: `docker import` registers the
 * layer straight from our stream (docker load would first copy the whole archive to a temporary
 * directory), then `docker load` of a tiny archive (config + manifest.json) creates the image with
 * the kept config: the engine finds the layer by its chain ID and does not read it again.
 * The import's throwaway image is removed; its layer stays, referenced by the new image.
 */
export async function flattenToEngine(opts: FlattenOptions): Promise<FlattenResult> {
  checkTag(opts.tag);
  // DiffIDs checked in the background (engine layer store) overlap the import; the image is
  // created (docker load of its config) only once they matched.
  return withTree({ ...opts, deferVerify: true }, async (tree) => {
    const tag = resolveTag(tree, opts, true)!;
    const { entries, bytes } = countEntries(tree.root);
    (opts.onProgress ?? noProgress)(`writing one layer (${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB of files) into the engine as ${tag}`);
    let size = 0;
    let reported = 0;
    const counted = function* (chunks: Generator<Buffer>) {
      for (const c of chunks) {
        size += c.length;
        if (opts.onProgress && size - reported >= 256 << 20) {
          reported = size;
          opts.onProgress(`  ${(size / 1048576).toFixed(0)} MiB streamed into docker import`);
        }
        yield c;
      }
    };
    const tmpTag = `gridforge-flatten-tmp:${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    const hash = crypto.createHash('sha256');
    const forget = onInterrupt(() => execFileSync('docker', ['rmi', tmpTag], { stdio: 'ignore', timeout: 20_000 }));
    try {
      await runDocker(['import', '-', tmpTag], Readable.from(counted(layerTarChunks(tree.root, hash)), { objectMode: false, highWaterMark: 1 << 20 }), tag);
      const diffId = `sha256:${hash.digest('hex')}`;
      await tree.src.verified; // a mismatch throws here: the temporary import is removed below, no tag is made
      const cfg = flatConfig(tree.src.config, tree.src.configDigest, tree.src.layers.length, diffId);
      const blobs = makeBlobs(cfg, diffId, size, tag, 'layer.tar');
      await runDocker(['load'], Buffer.concat([member(`blobs/sha256/${hex(blobs.configDigest)}`, blobs.config), member('manifest.json', blobs.dockerManifest), END_OF_ARCHIVE]), tag);
      const r = await execa('docker', ['image', 'inspect', '--format', '{{.Id}} {{index .RootFS.Layers 0}}', '--', tag], { reject: false });
      if (r.exitCode !== 0 || r.stdout.trim() !== `${blobs.configDigest} ${diffId}`) {
        throw new GridforgeError(`the engine did not produce ${blobs.configDigest} with layer ${diffId} as ${tag} (got ${r.stdout.trim() || r.stderr.trim()})`, { where: tag });
      }
      return { ref: tag, digest: blobs.configDigest, sourceDigest: tree.src.configDigest, diffId, layerSize: size, entries, sourceLayers: tree.src.layers.length, warnings: tree.warnings };
    } finally {
      await execa('docker', ['rmi', tmpTag], { reject: false });
      forget();
    }
  });
}

function writeAll(fd: number, buf: Buffer, pos?: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, pos === undefined ? null : pos + done);
}

/** Chunks between turns of the event loop while a layer is written (so SIGINT/SIGTERM cleanup runs). */
const YIELD_EVERY = 16;

/** Write the layer tar to `fd`; returns its size. Yields to the event loop every few MiB. */
async function writeLayer(fd: number, tree: ImageTree, hash: crypto.Hash): Promise<number> {
  let size = 0;
  let n = 0;
  for (const chunk of layerTarChunks(tree.root, hash, { reuseBuffer: true })) {
    writeAll(fd, chunk);
    size += chunk.length;
    if (++n % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
  }
  return size;
}

/** Write a docker-save archive (Docker 25 layout, loadable by Docker 20.10+). */
export async function flattenToArchive(opts: FlattenOptions & { output: string }): Promise<FlattenResult> {
  checkTag(opts.tag);
  checkOutputTarget(opts.output, '--output', 'file');
  return withTree(opts, async (tree) => {
    const tag = resolveTag(tree, opts, false);
    const { entries, bytes } = countEntries(tree.root);
    checkFreeSpace(path.dirname(path.resolve(opts.output)), bytes + entries * 1024, opts.output);
    (opts.onProgress ?? noProgress)(`writing one layer (${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB of files) to ${opts.output}`);
    const tmp = tempNameBeside(path.resolve(opts.output));
    const fd = openExclusive(tmp, 0o600);
    const forget = removeOnInterrupt(tmp);
    try {
      const hash = crypto.createHash('sha256');
      // member header first with placeholder name and size, patched in place once both are known
      const placeholder = `blobs/sha256/${'0'.repeat(64)}`;
      writeAll(fd, memberHeader(placeholder, 0));
      const size = await writeLayer(fd, tree, hash);
      writeAll(fd, padding(size));
      const diffId = `sha256:${hash.digest('hex')}`;
      const real = memberHeader(`blobs/sha256/${hex(diffId)}`, size);
      if (real.length !== 512) throw new GridforgeError('a flattened layer above 8 GiB cannot be written as a docker archive here', { where: opts.output, hint: 'Use --oci <dir> or load it into the engine instead.' });
      writeAll(fd, real, 0); // one 512-byte block either way: patched in place
      const cfg = flatConfig(tree.src.config, tree.src.configDigest, tree.src.layers.length, diffId);
      const blobs = makeBlobs(cfg, diffId, size, tag, `blobs/sha256/${hex(diffId)}`);
      for (const m of [
        member(`blobs/sha256/${hex(blobs.configDigest)}`, blobs.config),
        member(`blobs/sha256/${hex(blobs.manifestDigest)}`, blobs.manifest),
        member('index.json', blobs.index),
        member('manifest.json', blobs.dockerManifest),
        member('oci-layout', blobs.ociLayout),
        END_OF_ARCHIVE,
      ]) writeAll(fd, m);
      fs.fchmodSync(fd, 0o644);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, opts.output);
      forget();
      return { ref: tag, digest: blobs.configDigest, sourceDigest: tree.src.configDigest, diffId, layerSize: size, entries, sourceLayers: tree.src.layers.length, output: opts.output, warnings: tree.warnings };
    } catch (e) {
      try { fs.closeSync(fd); } catch { /* closed */ }
      fs.rmSync(tmp, { force: true });
      forget();
      throw e;
    }
  });
}

/**
 * Replace `output` (absent, or a previous result) with `tmp`: the old one is renamed into a fresh
 * exclusive directory beside it, `tmp` renamed into place, then the old one dropped. The two
 * renames run with no turn of the event loop between them, so no signal handler sees the gap.
 */
export function replaceDir(tmp: string, output: string): void {
  if (!fs.lstatSync(output, { throwIfNoEntry: false })) {
    fs.renameSync(tmp, output);
    return;
  }
  const holder = makeTempDirBeside(output);
  try {
    const old = path.join(holder, 'old');
    fs.renameSync(output, old);
    try {
      fs.renameSync(tmp, output);
    } catch (e) {
      fs.renameSync(old, output);
      throw e;
    }
  } finally {
    fs.rmSync(holder, { recursive: true, force: true });
  }
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * Is `dir` exactly what flattenToOci writes: `oci-layout`, `index.json` with one manifest, and
 * `blobs/sha256/` holding that manifest, its config (with the flatten source label) and its layer,
 * nothing else? Only such a directory is replaced without `force`.
 */
export function isPreviousOciResult(dir: string): boolean {
  try {
    if (fs.readdirSync(dir).sort().join('/') !== 'blobs/index.json/oci-layout') return false;
    if (fs.readdirSync(path.join(dir, 'blobs')).join('/') !== 'sha256') return false;
    const json = (file: string) => JSON.parse(readBoundedFile(file, file, 1 << 20).toString('utf8'));
    const blob = (d: unknown) => {
      if (typeof d !== 'string' || !DIGEST_RE.test(d)) throw new Error('not a digest');
      return path.join(dir, 'blobs', 'sha256', hex(d));
    };
    const index = json(path.join(dir, 'index.json')) as { manifests?: { digest?: string }[] };
    if (index.manifests?.length !== 1) return false;
    const manifest = json(blob(index.manifests[0].digest)) as { config?: { digest?: string }; layers?: { digest?: string }[] };
    if (manifest.layers?.length !== 1) return false;
    const config = json(blob(manifest.config?.digest)) as { config?: { Labels?: Record<string, string> } };
    if (!config.config?.Labels?.[SOURCE_LABEL]) return false;
    const expected = [index.manifests[0].digest!, manifest.config!.digest!, manifest.layers[0].digest!].map(hex).sort();
    if (!fs.lstatSync(blob(manifest.layers[0].digest)).isFile()) return false;
    return fs.readdirSync(path.join(dir, 'blobs', 'sha256')).sort().join('/') === expected.join('/');
  } catch {
    return false;
  }
}

/** An existing output directory may be replaced: empty, a previous result, or `force`. */
function checkOciOutput(output: string, force: boolean | undefined): void {
  const st = checkOutputTarget(output, '--oci', 'dir');
  if (!st || force || fs.readdirSync(output).length === 0 || isPreviousOciResult(output)) return;
  throw new UsageError('--oci: directory exists and is not an earlier result of gridforge image flatten --oci; its files would be deleted', { where: output, hint: 'Pass a new or empty directory, or --force to replace it with everything in it.' });
}

/** Write an OCI image layout directory with the single-layer image. */
export async function flattenToOci(opts: FlattenOptions & { output: string }): Promise<FlattenResult> {
  checkTag(opts.tag);
  checkOciOutput(opts.output, opts.force);
  return withTree(opts, async (tree) => {
    const tag = resolveTag(tree, opts, false);
    const { entries, bytes } = countEntries(tree.root);
    checkFreeSpace(path.dirname(path.resolve(opts.output)), bytes + entries * 1024, opts.output);
    let size = 0;
    checkOciOutput(opts.output, opts.force); // again: it may have changed while the image was read
    (opts.onProgress ?? noProgress)(`writing one layer (${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB of files) to OCI layout ${opts.output}`);
    const tmp = makeTempDirBeside(opts.output);
    const forget = removeOnInterrupt(tmp);
    const blobsDir = path.join(tmp, 'blobs', 'sha256');
    try {
      fs.chmodSync(tmp, 0o755);
      fs.mkdirSync(blobsDir, { recursive: true });
      const hash = crypto.createHash('sha256');
      const layerTmp = path.join(blobsDir, '.layer.tmp');
      const fd = fs.openSync(layerTmp, 'wx', 0o644);
      try {
        size = await writeLayer(fd, tree, hash);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      const diffId = `sha256:${hash.digest('hex')}`;
      fs.renameSync(layerTmp, path.join(blobsDir, hex(diffId)));
      const cfg = flatConfig(tree.src.config, tree.src.configDigest, tree.src.layers.length, diffId);
      const blobs = makeBlobs(cfg, diffId, size, tag, `blobs/sha256/${hex(diffId)}`);
      fs.writeFileSync(path.join(blobsDir, hex(blobs.configDigest)), blobs.config);
      fs.writeFileSync(path.join(blobsDir, hex(blobs.manifestDigest)), blobs.manifest);
      fs.writeFileSync(path.join(tmp, 'index.json'), blobs.index);
      fs.writeFileSync(path.join(tmp, 'oci-layout'), blobs.ociLayout);
      replaceDir(tmp, opts.output);
      forget();
      return { ref: tag, digest: blobs.configDigest, sourceDigest: tree.src.configDigest, diffId, layerSize: size, entries, sourceLayers: tree.src.layers.length, output: opts.output, warnings: tree.warnings };
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      forget();
      throw e;
    }
  });
}
