/**
 * Images in the local engine. Read from the engine's layer store when it is local and readable
 * (engine-store.ts); otherwise `docker save <ref>` is streamed (never buffered in memory) into a
 * spool file next to the work directory, then read in place like any docker-save archive.
 * References go to docker after `--` and one starting with `-` is refused: it would be read as an
 * option. The spool directory is removed on SIGINT/SIGTERM (base/cleanup.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { removeOnInterrupt } from '../../base/cleanup.ts';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { openDockerArchive } from './docker-archive.ts';
import { openEngineStore, StoreUnavailable } from './engine-store.ts';
import type { ImageSource } from './image-source.ts';
import { LayerStreamScan, type Prescan } from './layer-scan.ts';
import { TarSplitter } from './tar-split.ts';

/** An engine reference is handed to docker as an argument: refuse what docker would read as an option. */
export function checkEngineRef(ref: string): void {
  if (ref === '' || ref.startsWith('-') || /\s/.test(ref)) {
    throw new UsageError(`${JSON.stringify(ref)} is not an image reference, archive or OCI layout directory`, { where: ref, hint: 'Pass an engine reference like repo/name:tag (not starting with "-"), or a path to an archive or OCI directory (./-name for a file whose name starts with "-").' });
  }
}

export async function inspectImageId(ref: string): Promise<string | undefined> {
  checkEngineRef(ref);
  const r = await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', '--', ref], { reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

export async function openEngineImage(ref: string, opts: { tmpDir?: string; onFallback?: (why: string) => void } = {}): Promise<ImageSource> {
  const id = await inspectImageId(ref);
  if (!id) throw new UsageError(`no image ${ref} in the local engine`, { where: ref, hint: 'Build or load it first (docker image ls), or pass a docker-save archive / OCI layout directory.' });
  // Fast path: the engine's own layer store (local overlay2, readable); else stream docker save.
  try {
    return await openEngineStore(ref, id);
  } catch (e) {
    if (!(e instanceof StoreUnavailable)) throw e;
    opts.onFallback?.(e.message);
  }
  return openEngineSave(ref, id, opts);
}

async function openEngineSave(ref: string, id: string, opts: { tmpDir?: string }): Promise<ImageSource> {
  const tmpRoot = opts.tmpDir ?? os.tmpdir();
  const sizeOut = await execa('docker', ['image', 'inspect', '--format', '{{.Size}}', '--', ref], { reject: false });
  const imageSize = Number(sizeOut.stdout.trim()) || 0;
  let st: fs.StatsFs;
  try {
    st = fs.statfsSync(tmpRoot);
  } catch {
    throw new UsageError(`spool directory ${tmpRoot} does not exist or cannot be read`, { where: opts.tmpDir ? '--tmp-dir' : 'TMPDIR', hint: 'Pass --tmp-dir <existing directory> with room for the image.' });
  }
  if (imageSize + (512 << 20) > st.bavail * st.bsize) {
    throw new UsageError(`spooling docker save of ${ref} needs about ${(imageSize / 1048576).toFixed(0)} MiB in ${tmpRoot}, only ${((st.bavail * st.bsize) / 1048576).toFixed(0)} MiB free`, { where: ref, hint: 'Free disk space or pass --tmp-dir on a larger filesystem.' });
  }
  const spoolDir = fs.mkdtempSync(path.join(tmpRoot, 'gridforge-save-'));
  const spool = path.join(spoolDir, 'save.tar');
  const forget = removeOnInterrupt(spoolDir);
  try {
    const child = spawn('docker', ['save', '--', ref], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise<number>((res, rej) => { child.on('error', rej); child.on('close', (c) => res(c ?? 1)); });
    // While the save streams into the spool file, hash and scan every member that looks like an
    // uncompressed tar (layers), so no second pass over the layers is needed.
    const prescans = new Map<number, Prescan>();
    const splitter = new TarSplitter((h, offset) => {
      if (!/(^|\/)layer\.tar$|^blobs\/sha256\/[0-9a-f]{64}$/.test(h.path.replace(/^\.\//, '')) || h.size < 1024) return null;
      const scan = new LayerStreamScan(spool, offset);
      return {
        data: (c) => scan.push(c),
        end: () => {
          const { digest, complete } = scan.finish();
          prescans.set(offset, { digest, complete, error: scan.error, entries: scan.entries, total: scan.total });
        },
      };
    });
    const fd = fs.openSync(spool, 'w');
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
        let w = 0;
        while (w < chunk.length) w += fs.writeSync(fd, chunk, w, chunk.length - w);
        if (!splitter.ended) splitter.push(chunk);
      }
    } finally {
      fs.closeSync(fd);
    }
    const code = await exited;
    if (code !== 0) throw new GridforgeError(`docker save ${ref} failed: ${stderr.trim()}`, { where: ref, hint: 'Check that dockerd is running and the image exists.' });
    const src = openDockerArchive(spool, 'engine', ref);
    for (const l of src.layers) {
      const p = prescans.get(l.offset);
      // a member that is not plain tar (compressed) is scanned again from the spool file
      if (p && p.digest === l.diffId) l.prescan = p;
    }
    if (src.configDigest !== id) throw new GridforgeError(`docker save returned config ${src.configDigest}, expected ${id}`, { where: ref });
    return { ...src, repoTags: src.repoTags.length ? src.repoTags : [ref], close: async () => { fs.rmSync(spoolDir, { recursive: true, force: true }); forget(); } };
  } catch (e) {
    fs.rmSync(spoolDir, { recursive: true, force: true });
    forget();
    throw e;
  }
}
