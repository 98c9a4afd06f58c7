/**
 * Apptainer/Singularity sandboxes (images/sandbox/README.md): `writeSandbox({ source, output, bindPoints })`
 * writes the flattened root plus `.singularity.d/` and bind points into a directory (built in a
 * temporary sibling, renamed at the end); `writeSandboxToSink` does the same into any sink
 * (e.g. a CernVM-FS repository transaction). Setuid/setgid bits are dropped unless
 * `keepSetuid` (write-tree.ts). An existing output directory is replaced only when it is empty,
 * an earlier sandbox of gridforge (SANDBOX_MARKER) or `force` is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkOutputTarget } from '../../base/safe-fs.ts';
import { UsageError } from '../../base/errors.ts';
import { noProgress } from '../../base/progress.ts';
import { loadImageTree, type ImageTreeOptions } from '../layer/image-tree.ts';
import { countEntries } from '../layer/tree.ts';
import { checkFreeSpace } from '../flatten/free-space.ts';
import { addApptainerLayout, DEFAULT_BIND_POINTS, SANDBOX_MARKER } from './apptainer-layout.ts';
import { FsSink } from './fs-sink.ts';
import type { SandboxSink } from './sink.ts';
import { writeTree, type WriteStats } from './write-tree.ts';

export { DEFAULT_BIND_POINTS, SANDBOX_MARKER };
export type { SandboxSink } from './sink.ts';

export interface SandboxOptions extends ImageTreeOptions {
  source: string;
  /** Bind points to pre-create; default DEFAULT_BIND_POINTS. Extra ones are added to the defaults by the CLI. */
  bindPoints?: string[];
  /** Keep setuid/setgid bits of files (default: dropped; see write-tree.ts). */
  keepSetuid?: boolean;
}

export interface SandboxResult {
  output?: string;
  sourceDigest: string;
  bindPoints: string[];
  /** Paths gridforge added to the image root (documented additions). */
  added: string[];
  stats: WriteStats;
  /** Entries a lenient policy let through (`missingHardlinkTarget: 'empty'`), one line each. */
  warnings: string[];
}

export function checkBindPoints(points: string[]): string[] {
  return points.map((p) => {
    if (!p.startsWith('/') || p.split('/').includes('..') || p.includes('\0')) {
      throw new UsageError(`bind point ${JSON.stringify(p)} must be an absolute path without '..'`, { where: '--bind-point', hint: 'Use paths like /cvmfs or /data/site.' });
    }
    return p;
  });
}

export async function writeSandboxToSink(opts: SandboxOptions, sink: SandboxSink, prepare?: (bytes: number, entries: number) => void): Promise<SandboxResult> {
  const bindPoints = checkBindPoints(opts.bindPoints ?? DEFAULT_BIND_POINTS);
  const tree = await loadImageTree(opts.source, opts);
  try {
    const { added } = addApptainerLayout(tree.root, tree.src.config, { bindPoints, source: opts.source });
    const { entries, bytes } = countEntries(tree.root);
    prepare?.(bytes, entries);
    const say = opts.onProgress ?? noProgress;
    say(`writing sandbox (${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB)`);
    let stats: WriteStats;
    try {
      stats = await writeTree(tree.root, sink, {
        keepSetuid: opts.keepSetuid,
        onProgress: opts.onProgress && ((s) => say(`  ${s.files + s.dirs + s.symlinks + s.hardlinks} entries written`)),
      });
      await sink.finish();
    } catch (e) {
      await sink.abort();
      throw e;
    }
    return { sourceDigest: tree.src.configDigest, bindPoints, added, stats, warnings: tree.warnings };
  } finally {
    await tree.close();
  }
}

/** Did gridforge write this directory (its marker is a regular file in a real `.singularity.d/`)? */
export function isGridforgeSandbox(dir: string): boolean {
  const sd = fs.lstatSync(path.join(dir, '.singularity.d'), { throwIfNoEntry: false });
  return !!sd?.isDirectory() && !!fs.lstatSync(path.join(dir, SANDBOX_MARKER), { throwIfNoEntry: false })?.isFile();
}

/** The output may be written: absent, an empty directory, an earlier sandbox of gridforge, or `force`. */
export function checkSandboxOutput(output: string, force?: boolean): void {
  const st = checkOutputTarget(output, '--output', 'dir');
  if (!st || force || fs.readdirSync(output).length === 0 || isGridforgeSandbox(output)) return;
  throw new UsageError('--output: directory exists and is not a sandbox gridforge wrote; replacing it would delete its files', {
    where: output,
    hint: `Pass a new or empty directory, or --force to replace ${output} with everything in it.`,
  });
}

export async function writeSandbox(opts: SandboxOptions & { output: string; force?: boolean }): Promise<SandboxResult> {
  const out = path.resolve(opts.output);
  checkSandboxOutput(opts.output, opts.force);
  // validate input fully before creating anything
  const bindPoints = checkBindPoints(opts.bindPoints ?? DEFAULT_BIND_POINTS);
  let sink: FsSink | undefined;
  const lazy: SandboxSink = {
    carriesXattrs: process.getuid?.() === 0, // as FsSink
    dir: (p, m) => sink!.dir(p, m),
    file: (p, c, m) => sink!.file(p, c, m),
    symlink: (p, t, m) => sink!.symlink(p, t, m),
    hardlink: (p, t) => sink!.hardlink(p, t),
    fifo: (p, m) => sink!.fifo(p, m),
    finish: () => sink!.finish(),
    abort: async () => { await sink?.abort(); },
  };
  const r = await writeSandboxToSink({ ...opts, bindPoints }, lazy, (bytes, entries) => {
    checkFreeSpace(path.dirname(out), bytes, opts.output, entries);
    checkSandboxOutput(opts.output, opts.force); // again: it may have changed while the image was read
    sink = new FsSink(out);
  });
  return { ...r, output: opts.output };
}
