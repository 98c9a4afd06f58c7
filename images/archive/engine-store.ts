/**
 * Images in the local engine, read from the engine's own layer store instead of `docker save`.
 * `docker save` rebuilds every layer tar from two things on disk: the layer's tar-split metadata
 * (`image/overlay2/layerdb/sha256/<chain-id>/tar-split.json.gz`: the original header bytes) and
 * the files of the layer's diff directory (`overlay2/<cache-id>/diff/`). This reader uses the same
 * two sources directly: headers from tar-split, file contents read in place from the diff
 * directory when the output needs them. No 1 GB pipe through the daemon, no spool file.
 *
 * Each layer's DiffID is still verified over the whole rebuilt stream (layer-digest-worker.mjs, on
 * a worker thread while this thread parses the headers and the output is written).
 *
 * Only for a local engine with the overlay2 driver whose root dir this process can read (root);
 * anything else throws StoreUnavailable and engine.ts streams `docker save` instead. Set
 * GRIDFORGE_ENGINE_READ=save to always use `docker save`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { execa } from 'execa';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import type { ImageConfig, ImageSource, LayerBlob } from './image-source.ts';
import type { LayerEntry, Prescan } from './layer-scan.ts';
import { TarScanner } from './tar-scan.ts';
import { tarSplitEntries } from './tar-split-entries.mjs';

/** The layer store cannot be used here (not local, not overlay2, not readable...): fall back to docker save. */
export class StoreUnavailable extends Error {}

interface StoreLayer {
  diffId: string;
  tarSplit: string;
  diffDir: string;
}

async function engineRootDir(): Promise<string> {
  const r = await execa('docker', ['info', '--format', '{{.DockerRootDir}}'], { reject: false });
  if (r.exitCode !== 0 || !r.stdout.trim()) throw new StoreUnavailable('docker info gave no root dir');
  return r.stdout.trim();
}

function readOr(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new StoreUnavailable(`${what} not readable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Where the engine keeps this image: its config bytes and, per layer, tar-split and diff dir. */
async function locate(ref: string, id: string): Promise<{ configBytes: Buffer; repoTags: string[]; layers: StoreLayer[] }> {
  const inspect = await execa('docker', ['image', 'inspect', '--format', '{{json .}}', '--', ref], { reject: false });
  if (inspect.exitCode !== 0) throw new StoreUnavailable('docker image inspect failed');
  const info = JSON.parse(inspect.stdout) as { Id: string; RepoTags?: string[]; GraphDriver?: { Name?: string }; RootFS?: { Layers?: string[] } };
  if (info.Id !== id) throw new StoreUnavailable('the image changed while it was being opened');
  if (info.GraphDriver?.Name !== 'overlay2') throw new StoreUnavailable(`storage driver ${info.GraphDriver?.Name ?? '?'} (only overlay2 is read directly)`);
  const root = await engineRootDir();
  const hex = id.replace(/^sha256:/, '');
  const configBytes = readOr(path.join(root, 'image', 'overlay2', 'imagedb', 'content', 'sha256', hex), 'image config');
  // a remote daemon whose root dir happens to exist here would not match the ID
  if (`sha256:${crypto.createHash('sha256').update(configBytes).digest('hex')}` !== id) throw new StoreUnavailable('the config in the root dir is not this image (remote engine?)');
  const diffIds = info.RootFS?.Layers ?? [];
  const layers: StoreLayer[] = [];
  let chain = '';
  for (const diffId of diffIds) {
    chain = chain ? `sha256:${crypto.createHash('sha256').update(`${chain} ${diffId}`).digest('hex')}` : diffId;
    const meta = path.join(root, 'image', 'overlay2', 'layerdb', 'sha256', chain.slice(7));
    if (readOr(path.join(meta, 'diff'), 'layer metadata').toString().trim() !== diffId) throw new StoreUnavailable(`layer metadata of ${chain} does not name ${diffId}`);
    const cacheId = readOr(path.join(meta, 'cache-id'), 'layer cache id').toString().trim();
    if (!/^[0-9a-f]{64}$/.test(cacheId)) throw new StoreUnavailable(`unexpected cache id ${cacheId}`);
    const tarSplit = path.join(meta, 'tar-split.json.gz');
    const diffDir = path.join(root, 'overlay2', cacheId, 'diff');
    if (!fs.existsSync(tarSplit) || !fs.statSync(diffDir, { throwIfNoEntry: false })?.isDirectory()) throw new StoreUnavailable(`layer ${diffId} has no tar-split or diff directory`);
    layers.push({ diffId, tarSplit, diffDir });
  }
  return { configBytes, repoTags: info.RepoTags ?? [], layers };
}

/**
 * Is every parent of `rel` a real directory in the layer directory? A symlinked parent (the
 * engine's chrooted unpack wrote through it) would resolve on the host, outside the layer: such a
 * layer is never read here. One lstat per distinct directory (memoised).
 */
function parentChecker(diffDir: string): (rel: string) => boolean {
  const dirs = new Map<string, boolean>([['', true]]);
  const isDir = (d: string): boolean => {
    const known = dirs.get(d);
    if (known !== undefined) return known;
    const up = path.posix.dirname(d);
    const ok = isDir(up === '.' ? '' : up) && (fs.lstatSync(path.join(diffDir, d), { throwIfNoEntry: false })?.isDirectory() ?? false);
    dirs.set(d, ok);
    return ok;
  };
  return (rel) => {
    const up = path.posix.dirname(rel);
    return isDir(up === '.' ? '' : up);
  };
}

/** Headers of one layer from its tar-split; each regular file's data points at its file in the diff dir. */
async function scanTarSplit(layer: StoreLayer): Promise<{ entries: LayerEntry[]; total: number; complete: boolean; error?: Error }> {
  const entries: LayerEntry[] = [];
  let last: LayerEntry | undefined;
  const scanner = new TarScanner((e) => {
    last = { header: e.header, file: '', offset: 0 };
    entries.push(last);
  });
  let total = 0;
  const parentOk = parentChecker(layer.diffDir);
  try {
    for await (const e of tarSplitEntries(layer.tarSplit)) {
      if (e.type === 2) {
        const b = Buffer.from(e.payload ?? '', 'base64');
        scanner.push(b);
        total += b.length;
      } else if (e.type === 1 && (e.size ?? 0) > 0) {
        if (e.name_raw) throw new StoreUnavailable('an entry has a non-UTF-8 name');
        const rel = path.posix.normalize((e.name ?? '').replace(/^\/+/, ''));
        if (rel === '..' || rel.startsWith('../')) throw new StoreUnavailable(`entry ${e.name} points outside the layer`);
        if (!parentOk(rel)) throw new StoreUnavailable(`entry ${e.name} lies below a symlink or missing directory in the layer directory`);
        const headerPath = last ? path.posix.normalize(last.header.path.replace(/^\/+/, '')) : '';
        if (!last || last.header.type !== 'file' || headerPath !== rel) throw new StoreUnavailable(`tar-split file ${e.name} does not follow its own header`);
        last.file = path.join(layer.diffDir, rel);
        last.offset = 0;
        scanner.skipData(e.size!);
        total += e.size!;
      }
    }
  } catch (e) {
    if (e instanceof StoreUnavailable) throw e;
    return { entries, total, complete: false, error: e as Error };
  }
  return { entries, total, complete: scanner.complete };
}

/** DiffIDs of all layers, one after the other on one worker thread (hashing is bound by reads). */
function digestLayers(layers: StoreLayer[]): { results: Promise<{ digest: string; total: number }[]>; stop: () => Promise<void> } {
  const w = new Worker(new URL('./layer-digest-worker.mjs', import.meta.url), { workerData: { layers: layers.map((l) => ({ tarSplit: l.tarSplit, diffDir: l.diffDir })) }, execArgv: [] });
  const results = new Promise<{ digest: string; total: number }[]>((resolve, reject) => {
    w.once('message', (m: { results?: { digest: string; total: number }[]; failed?: string; layer?: number }) => {
      void w.terminate();
      // the worker names the layer by its index in the image's layer list; without one, blame none
      const where = m.layer !== undefined && layers[m.layer] ? `layer ${m.layer + 1} (${layers[m.layer].diffId.slice(7, 19)}, engine layer store)` : 'engine layer store';
      if (m.failed) reject(new GridforgeError(`cannot rebuild the layer from the engine's layer store: ${m.failed}`, { where, hint: 'The image changed or was removed while it was read; retry, or set GRIDFORGE_ENGINE_READ=save.' }));
      else resolve(m.results!);
    });
    w.once('error', (e) => reject(new GridforgeError(`layer digest worker failed: ${e.message}`, { hint: 'Retry, or set GRIDFORGE_ENGINE_READ=save.' })));
  });
  results.catch(() => undefined); // the caller awaits `verified`
  return { results, stop: async () => { await w.terminate(); } };
}

/**
 * Open an engine image from the layer store; throws StoreUnavailable when docker save must be used.
 * The headers are parsed here; the DiffIDs are recomputed on a worker meanwhile and checked by
 * `verified`, which an output awaits before it makes its result visible (loadImageTree awaits it
 * unless the output asks to overlap it with its own work, as flattenToEngine does with the import).
 */
export async function openEngineStore(ref: string, id: string): Promise<ImageSource> {
  if (process.env.GRIDFORGE_ENGINE_READ === 'save') throw new StoreUnavailable('GRIDFORGE_ENGINE_READ=save');
  const { configBytes, repoTags, layers } = await locate(ref, id);
  const digests = digestLayers(layers);
  try {
    const scans: Awaited<ReturnType<typeof scanTarSplit>>[] = [];
    for (const l of layers) scans.push(await scanTarSplit(l));
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch {
      throw new StoreUnavailable('image config is not JSON');
    }
    const blobs: LayerBlob[] = layers.map((l, i) => {
      // the digest is the expected one here; `verified` below checks the recomputed one
      const prescan: Prescan = { digest: l.diffId, complete: scans[i].complete, error: scans[i].error, entries: scans[i].entries, total: scans[i].total };
      return { label: `layer ${i + 1} (${l.diffId.slice(7, 19)}, engine layer store)`, file: l.tarSplit, offset: 0, size: scans[i].total, diffId: l.diffId, prescan };
    });
    const verified = digests.results.then((hashed) => {
      hashed.forEach((h, i) => {
        if (h.digest !== blobs[i].diffId) {
          throw new UsageError(`DiffID mismatch: the layer rebuilt from the engine's layer store hashes to ${h.digest}, the config says ${blobs[i].diffId}`, { where: blobs[i].label, hint: 'The copy of the layer in the engine is damaged; pull or load the image again.' });
        }
      });
    });
    verified.catch(() => undefined); // awaited by the output
    return { source: ref, kind: 'engine', config, configBytes, configDigest: id, repoTags: repoTags.length ? repoTags : [ref], layers: blobs, verified, close: digests.stop };
  } catch (e) {
    await digests.stop();
    throw e;
  }
}
