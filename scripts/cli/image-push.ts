/** `gridforge image push`: argument parsing and printing only; the work is in images/registry/push-image.ts. */
import type { Command } from 'commander';
import { printJson, printLine, progress } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { parseByteSize } from '../../images/archive/limits.ts';
import { parsePushCompression, pushImage } from '../../images/registry/push-image.ts';

export function registerPush(image: Command): void {
  withJson(
    image
      .command('push')
      .description('flatten an image to one layer and push it to a registry (OCI manifest + config + one layer)')
      .argument('<source>', 'engine image reference, docker-save archive (.tar), OCI layout directory or docker://<registry>/<repository>:<tag>')
      .argument('<target>', 'docker://<registry>/<repository>:<tag> (credentials from ~/.docker/config.json; GRIDFORGE_REGISTRY_CA, GRIDFORGE_INSECURE_REGISTRIES, GRIDFORGE_REGISTRY_TIMEOUT: images/registry/README.md)')
      .option('--platform <os/arch>', 'with a docker:// source: the platform to take from a multi-platform image (default linux/amd64)')
      .option('--tmp-dir <dir>', 'where the flattened image and spool files go')
      .option('--max-layer-size <size>', 'largest uncompressed layer to read, e.g. 100G (default 64G)')
      .option('--compression <gzip|none>', 'how the layer is sent: gzip (default; pigz on every core when installed) or none (the plain tar)', parsePushCompression),
  ).action(
    action(async (source: string, target: string, opts: { platform?: string; tmpDir?: string; maxLayerSize?: string; compression?: 'gzip' | 'none'; json?: boolean }) => {
      const maxLayerSize = opts.maxLayerSize === undefined ? undefined : parseByteSize(opts.maxLayerSize, '--max-layer-size');
      const r = await pushImage({ source, target, platform: opts.platform, tmpDir: opts.tmpDir, maxLayerSize, compression: opts.compression, onProgress: progress });
      if (opts.json) return printJson(r);
      printLine(`pushed ${r.flatten.entries} entries in one layer (${(r.flatten.layerSize / 1048576).toFixed(1)} MiB${r.compression === 'gzip' ? ', sent gzipped' : ''}), ${r.uploaded} blobs uploaded`);
      printLine(`digest    ${r.digest}`);
      printLine(r.ref);
    }),
  );
}
