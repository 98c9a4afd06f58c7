/**
 * `gridforge image build <name>` and `gridforge image render <name>`.
 * Parses arguments and prints; the work happens in images/render.ts and images/build.ts.
 */
import type { Command } from 'commander';
import { action, withJson } from './command.ts';
import { loadConfig } from './project-config.ts';
import { printJson, printLine, progress } from '../lib/output.ts';
import { buildImage } from '../../images/build.ts';
import { renderImage, writeContext } from '../../images/render.ts';

function configFile(cmd: Command): string {
  return (cmd.optsWithGlobals().config as string | undefined) ?? 'gridforge.yaml';
}

export function registerBuild(image: Command): void {
  withJson(
    image
      .command('build')
      .description('render the Dockerfile of an image from gridforge.yaml, build it on the Docker engine, flatten it (default) and tag <prefix>/<name>:<os>-<variant>-<version>; prints the image reference as the last line')
      .argument('<name>', 'image name (a key of images: in gridforge.yaml, e.g. vobox-slurm or job)')
      .option('--no-flatten', 'keep the layers (tag the image docker built)')
      .option('--image-version <version>', 'version part of the tag (default: the config\'s version)')
      .option('--no-cache', 'build without the docker layer cache'),
  ).action(
    action(async (name: string, opts: { flatten: boolean; imageVersion?: string; cache: boolean; json?: boolean }, cmd: Command) => {
      const config = loadConfig(configFile(cmd));
      const result = await buildImage(config, name, {
        version: opts.imageVersion,
        flatten: opts.flatten,
        noCache: !opts.cache,
        onProgress: (line) => progress(line),
      });
      if (opts.json) printJson(result);
      else {
        printLine(`built ${result.name} (${result.os}, ${result.variant}, ${result.version})${result.flattened ? ', flattened' : ', layered'}: ${result.id}`);
        printLine(result.ref);
      }
    }),
  );

  withJson(
    image
      .command('render')
      .description('print the Dockerfile an image is built from, without building (--context writes the whole build context)')
      .argument('<name>', 'image name (a key of images: in gridforge.yaml)')
      .option('--context <dir>', 'also write the full build context (Dockerfile + rootfs/) into this new folder'),
  ).action(
    action(async (name: string, opts: { context?: string; json?: boolean }, cmd: Command) => {
      const config = loadConfig(configFile(cmd));
      const rendered = renderImage(config, name);
      if (opts.context) {
        await writeContext(rendered, opts.context);
        progress(`render ${name}: wrote ${rendered.files.length} files to ${opts.context}`);
      }
      if (opts.json) {
        printJson({
          name,
          templateHash: rendered.templateHash,
          dockerfile: rendered.dockerfile,
          files: rendered.files.map((f) => ({ path: f.path, mode: `0${f.mode.toString(8)}`, bytes: Buffer.byteLength(f.content) })),
          ...(opts.context ? { context: opts.context } : {}),
        });
      } else {
        process.stdout.write(rendered.dockerfile.endsWith('\n') ? rendered.dockerfile : `${rendered.dockerfile}\n`);
      }
    }),
  );
}
