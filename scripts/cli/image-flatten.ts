/**
 * `gridforge image flatten` and `gridforge image sandbox`: argument parsing and printing only; the
 * work is in images/flatten and images/sandbox.
 */
import type { Command } from 'commander';
import { UsageError } from '../../base/errors.ts';
import { printJson, printLine, progress, warn } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { collect } from './options.ts';
import { LAYER_SIZE_ENV, parseByteSize } from '../../images/archive/limits.ts';
import { flattenToArchive, flattenToEngine, flattenToOci, type FlattenResult } from '../../images/flatten/index.ts';
import { DEFAULT_BIND_POINTS, writeSandbox, type SandboxResult } from '../../images/sandbox/index.ts';
import { MISSING_HARDLINK_FLAG, parseMissingHardlinkTarget, type MissingHardlinkTarget } from '../../images/layer/hardlink-policy.ts';

/**
 * `--max-layer-size <size>`: the per-layer uncompressed size limit of the image reader, passed as
 * its `maxLayerSize` option (without the flag: GRIDFORGE_MAX_LAYER_SIZE, then the default; see
 * images/archive/limits.ts). A bad size names the flag.
 */
function maxLayerSizeOf(size: string | undefined): number | undefined {
  return size === undefined ? undefined : parseByteSize(size, '--max-layer-size');
}

const PLATFORM_HELP = 'with a docker:// source: the platform to take from a multi-platform image, e.g. linux/arm64 (default linux/amd64)';
const SOURCE_HELP = 'engine image reference, docker-save archive (.tar), OCI layout directory, or docker://<registry>/<repository>:<tag> or ...@sha256:<digest>';

/** --platform only picks among a registry image's platforms. */
function platformFor(source: string, platform: string | undefined): string | undefined {
  if (platform !== undefined && !source.startsWith('docker://')) throw new UsageError('--platform applies to docker:// sources only', { where: '--platform', hint: 'Drop --platform, or pass docker://<registry>/<repository>:<tag>.' });
  return platform;
}

const MAX_LAYER_SIZE_HELP = `largest uncompressed layer to read, e.g. 100G (default 64G; environment ${LAYER_SIZE_ENV})`;

/** Shared with `image sync` (scripts/cli/image-sync.ts). */
export const MISSING_HARDLINK_HELP = 'a hard link whose target does not exist in the image (never created, or whited out): refuse (default: exit 2 naming the layer and entry) or empty (write an empty file with the entry\'s own metadata and warn once per entry; cvmfs ingest does the same)';

/** `--missing-hardlink-target <policy>`, checked (a bad value names the flag, exit 2). */
export function missingHardlinkTargetOf(value: string | undefined): { missingHardlinkTarget?: MissingHardlinkTarget; onWarning: (m: string) => void } {
  return { missingHardlinkTarget: value === undefined ? undefined : parseMissingHardlinkTarget(value, MISSING_HARDLINK_FLAG), onWarning: warn };
}

function printFlatten(r: FlattenResult, json: boolean): void {
  if (json) return printJson(r);
  printLine(`flattened ${r.sourceLayers} layers of ${r.sourceDigest} into one layer (${r.entries} entries, ${(r.layerSize / 1048576).toFixed(1)} MiB)`);
  printLine(`image id  ${r.digest}`);
  printLine(`layer     ${r.diffId}`);
  if (r.output) printLine(`written   ${r.output}`);
  if (r.ref) printLine(r.ref);
}

function printSandbox(r: SandboxResult & { repo?: string; path?: string; revision?: number }, json: boolean): void {
  if (json) return printJson(r);
  const s = r.stats;
  printLine(`sandbox of ${r.sourceDigest}: ${s.files} files, ${s.dirs} directories, ${s.symlinks} symlinks, ${s.hardlinks} hardlinks, ${(s.bytes / 1048576).toFixed(1)} MiB`);
  if (s.skippedDevices) printLine(`skipped ${s.skippedDevices} device nodes (never written into sandboxes)`);
  if (s.xattrs) printLine(`kept ${s.xattrs} extended attributes`);
  if (s.skippedXattrs) printLine(`dropped ${s.skippedXattrs} extended attributes (only root writes them into a sandbox directory)`);
  if (s.strippedSetid) printLine(`dropped setuid/setgid bits of ${s.strippedSetid} files (--keep-setuid keeps them)`);
  printLine(`bind points: ${r.bindPoints.join(' ')}`);
  printLine(r.output ?? `${r.repo}:${r.path}`);
}

export function registerFlatten(image: Command): void {
  withJson(
    image
      .command('flatten')
      .description('flatten an image to a single layer, keeping its config (Env, Entrypoint, Cmd, Labels, ...)')
      .argument('<source>', SOURCE_HELP)
      .option('--platform <os/arch>', PLATFORM_HELP)
      .option('--tag <ref>', 'name of the result (default: the source tag with -flat appended)')
      .option('--output <archive.tar>', 'write a docker-save archive instead of loading into the engine')
      .option('--oci <dir>', 'write an OCI image layout directory instead of loading into the engine (an earlier result there is replaced)')
      .option('--force', 'with --oci: replace an existing directory that is not an earlier result, deleting its files')
      .option('--tmp-dir <dir>', 'where spool files go (engine saves, decompressed layers)')
      .option('--max-layer-size <size>', MAX_LAYER_SIZE_HELP)
      .option(`${MISSING_HARDLINK_FLAG} <refuse|empty>`, MISSING_HARDLINK_HELP),
  ).action(
    action(async (source: string, opts: { tag?: string; output?: string; oci?: string; force?: boolean; tmpDir?: string; maxLayerSize?: string; platform?: string; missingHardlinkTarget?: string; json?: boolean }) => {
      const maxLayerSize = maxLayerSizeOf(opts.maxLayerSize);
      const policy = missingHardlinkTargetOf(opts.missingHardlinkTarget);
      const platform = platformFor(source, opts.platform);
      if (opts.output && opts.oci) throw new UsageError('--output and --oci are mutually exclusive', { where: '--output/--oci', hint: 'Pick one output.' });
      if (opts.force && !opts.oci) throw new UsageError('--force only applies to --oci (an --output archive file is always replaced)', { where: '--force', hint: 'Drop --force, or write with --oci <dir>.' });
      const base = { source, tag: opts.tag, tmpDir: opts.tmpDir, maxLayerSize, platform, onProgress: progress, ...policy };
      const r = opts.output
        ? await flattenToArchive({ ...base, output: opts.output })
        : opts.oci
          ? await flattenToOci({ ...base, output: opts.oci, force: opts.force })
          : await flattenToEngine(base);
      printFlatten(r, !!opts.json);
    }),
  );

  withJson(
    image
      .command('sandbox')
      .description('write an Apptainer/Singularity sandbox directory from an image (flattened, with .singularity.d and bind points)')
      .argument('<source>', SOURCE_HELP)
      .option('--platform <os/arch>', PLATFORM_HELP)
      .option('--output <dir>', 'sandbox directory to write (replaced atomically if it is an earlier sandbox of gridforge)')
      .option('--force', 'with --output: replace an existing directory that is not an earlier sandbox, deleting its files')
      .option('--keep-setuid', 'keep setuid/setgid bits of files (default: dropped, so no setuid binary of the image lands on this host)')
      .option('--bind-point <path>', `extra bind point to pre-create (repeatable; always: ${DEFAULT_BIND_POINTS.join(' ')})`, collect, [])
      .option('--repo <repo-dir>', 'write into this CernVM-FS repository in one transaction instead of a directory')
      .option('--path <path-in-repo>', 'with --repo: where the sandbox goes, e.g. containers/fs/singularity/<name>')
      .option('--tag <name>', 'with --repo: tag for the published revision')
      .option('--tmp-dir <dir>', 'where spool files go (engine saves, decompressed layers)')
      .option('--max-layer-size <size>', MAX_LAYER_SIZE_HELP)
      .option(`${MISSING_HARDLINK_FLAG} <refuse|empty>`, MISSING_HARDLINK_HELP),
  ).action(
    action(async (source: string, opts: { output?: string; force?: boolean; keepSetuid?: boolean; bindPoint: string[]; repo?: string; path?: string; tag?: string; tmpDir?: string; maxLayerSize?: string; platform?: string; missingHardlinkTarget?: string; json?: boolean }) => {
      const maxLayerSize = maxLayerSizeOf(opts.maxLayerSize);
      const policy = missingHardlinkTargetOf(opts.missingHardlinkTarget);
      const platform = platformFor(source, opts.platform);
      const bindPoints = [...DEFAULT_BIND_POINTS, ...opts.bindPoint.filter((p) => !DEFAULT_BIND_POINTS.includes(p))];
      if (opts.repo || opts.path) {
        if (!opts.repo || !opts.path) throw new UsageError('--repo and --path go together', { where: opts.repo ? '--path' : '--repo', hint: 'Pass both, e.g. --repo /srv/repo --path containers/fs/singularity/alma9.' });
        if (opts.output) throw new UsageError('--output and --repo are mutually exclusive', { where: '--output/--repo', hint: 'Pick one output.' });
        if (opts.force) throw new UsageError('--force only applies to --output (the repository keeps earlier revisions)', { where: '--force', hint: 'Drop --force.' });
        const { writeSandboxToRepository } = await import('../../release/sandbox-to-repo.ts');
        const r = await writeSandboxToRepository({ source, bindPoints, keepSetuid: opts.keepSetuid, tmpDir: opts.tmpDir, maxLayerSize, platform, repo: opts.repo, path: opts.path, tag: opts.tag, onProgress: progress, ...policy });
        printSandbox(r, !!opts.json);
        return;
      }
      if (!opts.output) throw new UsageError('missing --output <dir> (or --repo + --path)', { where: 'image sandbox', hint: 'Say where the sandbox goes.' });
      const r = await writeSandbox({ source, output: opts.output, force: opts.force, keepSetuid: opts.keepSetuid, bindPoints, tmpDir: opts.tmpDir, maxLayerSize, platform, onProgress: progress, ...policy });
      printSandbox(r, !!opts.json);
    }),
  );
}
