/**
 * Apptainer/Singularity sandboxes (contract 3): `writeSandbox({ source, output, bindPoints })`
 * writes the flattened root plus `.singularity.d/` and bind points into a directory (built in a
 * temporary sibling, renamed at the end); `writeSandboxToSink` does the same into any sink
 * (e.g. a CernVM-FS repository transaction).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../scripts/lib/errors.ts';
import { progress } from '../../scripts/lib/output.ts';
import { loadImageTree, type ImageTreeOptions } from '../layer/image-tree.ts';
import { countEntries } from '../layer/tree.ts';
import { checkFreeSpace } from '../flatten/free-space.ts';
import { addApptainerLayout, DEFAULT_BIND_POINTS } from './apptainer-layout.ts';
import { FsSink } from './fs-sink.ts';
import type { SandboxSink } from './sink.ts';
import { writeTree, type WriteStats } from './write-tree.ts';

export { DEFAULT_BIND_POINTS };
export type { SandboxSink } from './sink.ts';

export interface SandboxOptions extends ImageTreeOptions {
  source: string;
  /** Bind points to pre-create; default DEFAULT_BIND_POINTS. Extra ones are added to the defaults by the CLI. */
  bindPoints?: string[];
}

export interface SandboxResult {
  output?: string;
  sourceDigest: string;
  bindPoints: string[];
  /** Paths gridforge added to the image root (documented additions). */
  added: string[];
  stats: WriteStats;
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
    if (!opts.quiet) progress(`writing sandbox (${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB)`);
    let stats: WriteStats;
    try {
      stats = await writeTree(tree.root, sink, opts.quiet ? undefined : (s) => progress(`  ${s.files + s.dirs + s.symlinks + s.hardlinks} entries written`));
      await sink.finish();
    } catch (e) {
      await sink.abort();
      throw e;
    }
    return { sourceDigest: tree.src.configDigest, bindPoints, added, stats };
  } finally {
    await tree.close();
  }
}

export async function writeSandbox(opts: SandboxOptions & { output: string }): Promise<SandboxResult> {
  const out = path.resolve(opts.output);
  if (fs.existsSync(out)) {
    const st = fs.lstatSync(out);
    const isSandbox = st.isDirectory() && fs.existsSync(path.join(out, '.singularity.d'));
    if (!isSandbox && !(st.isDirectory() && fs.readdirSync(out).length === 0)) {
      throw new UsageError('output exists and is not a sandbox', { where: opts.output, hint: 'Pass a new directory (an existing sandbox is replaced).' });
    }
  }
  if (!fs.existsSync(path.dirname(out))) throw new UsageError('parent directory of the output does not exist', { where: opts.output, hint: 'Create it first.' });
  // validate input fully before creating anything
  const bindPoints = checkBindPoints(opts.bindPoints ?? DEFAULT_BIND_POINTS);
  let sink: FsSink | undefined;
  const lazy: SandboxSink = {
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
    sink = new FsSink(out);
  });
  return { ...r, output: opts.output };
}
