/**
 * Build an image on the Docker engine: render the context, `docker build` it to an image ID (no
 * tag, so a failed build leaves no tag behind), then either flatten it into the final tag through
 * the flatten capability (`images/flatten/index.ts`, `flattenToEngine`) or tag the layered image.
 *
 * Uses the docker CLI through execa (the engine here is 20.10, API 1.41, no buildx): the classic
 * builder (`DOCKER_BUILDKIT=0`) prints "Step N/M : ..." lines, which give progress and the failing
 * step. Labels go in with `--label`, so they do not invalidate the layer cache.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { removeOnInterrupt } from '../base/cleanup.ts';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { TEMPLATES_DIR } from '../templates/render.ts';
import { getImage, imageRef, type ImagesConfig } from './config.ts';
import { renderImage, writeContext } from './render.ts';

const GRIDFORGE_ROOT = path.dirname(TEMPLATES_DIR.replace(/\/+$/, ''));
import { checkEngine, dockerEnv } from './build-engine.ts';
import { flattenToEngine } from './flatten/index.ts';

export interface BuildOptions {
  /** Version part of the tag (default: the image's configured version). */
  version?: string;
  /** Flatten to one layer (default true). */
  flatten?: boolean;
  noCache?: boolean;
  /** One line of build output or a step message; default: nothing. */
  onProgress?: (line: string) => void;
  /** Overrides for the labels' revision/created values (tests, reproducible release builds). */
  revision?: string;
  created?: string;
}

export interface BuildResult {
  name: string;
  ref: string;
  id: string;
  os: string;
  variant: string;
  version: string;
  labels: Record<string, string>;
  flattened: boolean;
  /** Set when flattened: digest of the flattened image and of the layered source. */
  digest?: string;
  sourceDigest?: string;
  templateHash: string;
}

const TAIL_LINES = 30;

async function gitValue(root: string, args: string[]): Promise<string | undefined> {
  try {
    const r = await execa('git', args, { cwd: root, reject: false, timeout: 5000 });
    return r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The labels every gridforge image carries (images/README.md: OCI annotations and `io.gridforge.*`) plus the image's own. */
export async function imageLabels(
  config: ImagesConfig,
  name: string,
  templateHash: string,
  version: string,
  opts: Pick<BuildOptions, 'revision' | 'created'> = {},
): Promise<Record<string, string>> {
  const img = getImage(config, name);
  // The config's checkout first, else gridforge's own (the templates come from there).
  const roots = [config.root, GRIDFORGE_ROOT];
  const firstGit = async (args: string[]) => {
    for (const root of roots) {
      const v = await gitValue(root, args);
      if (v) return v;
    }
    return undefined;
  };
  const revision = opts.revision ?? (await firstGit(['rev-parse', 'HEAD'])) ?? 'unknown';
  const source = config.source ?? (await firstGit(['config', '--get', 'remote.origin.url'])) ?? `file://${config.root}`;
  // SOURCE_DATE_EPOCH (reproducible-builds.org) pins the creation time of release builds.
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const created = opts.created ?? (epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000).toISOString() : new Date().toISOString());
  return {
    ...img.labels,
    'org.opencontainers.image.title': name,
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.revision': revision,
    'org.opencontainers.image.source': source,
    'org.opencontainers.image.created': created,
    'io.gridforge.template-hash': templateHash,
    'io.gridforge.image': name,
    'io.gridforge.os': img.os,
    'io.gridforge.variant': img.variant,
  };
}

/** Render, build, then flatten (default) or tag. Never leaves a tag on a failed build. */
export async function buildImage(config: ImagesConfig, name: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const img = getImage(config, name);
  const version = opts.version ?? img.version;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(version)) {
    throw new UsageError(`'${version}' cannot be part of a docker tag`, {
      where: '--image-version',
      hint: 'Use letters, digits, ".", "_" and "-" only, e.g. 2.1.4-1.',
    });
  }
  const ref = imageRef(config, img, version);
  const say = opts.onProgress ?? (() => {});
  const rendered = renderImage(config, name);

  await checkEngine();
  await checkBase(img.base.image, say);

  const labels = await imageLabels(config, name, rendered.templateHash, version, opts);
  const work = await mkdtemp(path.join(os.tmpdir(), 'gridforge-build-'));
  // Interrupted (Ctrl-C, kill): the temporary context is removed (base/cleanup.ts, exit 128+signal).
  // The build has no -t, so an interrupted build changes no tag either.
  const forget = removeOnInterrupt(work);
  try {
    const ctx = path.join(work, 'context');
    await writeContext(rendered, ctx);
    const iidFile = path.join(work, 'iid');
    const args = ['build', '--iidfile', iidFile, '--force-rm'];
    if (opts.noCache) args.push('--no-cache');
    for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
    args.push(ctx);
    say(`build ${name}: docker build (${img.os}, ${img.kind === 'vobox' ? `flavour ${img.flavour}` : 'job'}) -> ${ref}`);

    const tail: string[] = [];
    let step = '';
    let banner = false;
    const onLine = (line: string) => {
      // The CLI's notice that the classic builder is deprecated: chosen on purpose (engine 20.10, no buildx).
      if (/^DEPRECATED: The legacy builder is deprecated/.test(line)) banner = true;
      if (banner) {
        if (line.trim() === '') banner = false;
        return;
      }
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      if (/^Step \d+\/\d+ : /.test(line)) step = line;
      say(line);
    };
    const child = execa('docker', args, { env: dockerEnv(), reject: false, all: true, buffer: false });
    child.all?.setEncoding('utf8');
    let rest = '';
    child.all?.on('data', (chunk: string) => {
      const lines = (rest + chunk).split(/\r?\n/);
      rest = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    const result = await child;
    if (rest) onLine(rest);
    if (result.exitCode !== 0) {
      const where = step ? step.replace(/^Step (\d+\/\d+) : /, 'step $1: ') : 'before the first step';
      const atFrom = /^Step \d+\/\d+ : FROM /.test(step);
      throw new GridforgeError(`docker build of ${name} failed at ${where.length > 200 ? `${where.slice(0, 200)}...` : where}`, {
        hint: atFrom
          ? `The base image ${img.base.image} is not on the engine and could not be pulled: docker pull/load it, or point bases.${img.os}.image in ${config.file} at an image the engine has. No tag was changed.`
          : 'Fix the cause shown in the build log below (a missing package name, an unreachable Debian mirror, a template error); no tag was changed.',
        detail: `last ${tail.length} lines of the build log:\n${tail.map((l) => `  | ${l}`).join('\n')}`,
      });
    }
    const id = (await readFile(iidFile, 'utf8')).trim();

    let flattened = false;
    let finalId = id;
    let digest: string | undefined;
    let sourceDigest: string | undefined;
    if (opts.flatten !== false) {
      say(`build ${name}: flattening ${id.slice(0, 19)} into ${ref}`);
      const r = await flattenToEngine({ source: id, tag: ref, onProgress: opts.onProgress });
      flattened = true;
      digest = r.digest;
      sourceDigest = r.sourceDigest;
      finalId = await inspectId(r.ref ?? ref);
      // The untagged layered image is not needed any more (it would pile up as <none> with every
      // build); --no-prune keeps its parents, the classic builder's cache for the next build.
      await execa('docker', ['rmi', '--no-prune', id], { env: dockerEnv(), reject: false });
    }
    if (!flattened) await docker(['tag', '--', id, ref]);
    say(`build ${name}: ${ref} (${finalId.slice(0, 19)})`);
    return {
      name,
      ref,
      id: finalId,
      os: img.os,
      variant: img.variant,
      version,
      labels,
      flattened,
      ...(digest ? { digest, sourceDigest } : {}),
      templateHash: rendered.templateHash,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
    forget();
  }
}

async function docker(args: string[]): Promise<string> {
  const r = await execa('docker', args, { env: dockerEnv(), reject: false });
  if (r.exitCode !== 0) {
    throw new GridforgeError(`docker ${args[0]} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`, {
      hint: 'Check that the Docker engine is healthy (docker info).',
    });
  }
  return r.stdout.trim();
}

async function inspectId(ref: string): Promise<string> {
  return docker(['image', 'inspect', '--format', '{{.Id}}', '--', ref]);
}

/** A base that is not on the engine: offline bases get a precise fix; registry bases are pulled by docker build. */
async function checkBase(base: string, say: (line: string) => void): Promise<void> {
  // `--`: a base from the config is a reference, never an option (one starting with '-' then fails as a name)
  const r = await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', '--', base], { env: dockerEnv(), reject: false });
  if (r.exitCode === 0) return;
  if (base.startsWith('gridforge/base:')) {
    throw new GridforgeError(`the offline base image ${base} is not on the engine`, {
      hint: `Make it with: bash scripts/base-image.sh ${base} (debootstrap + docker import; no registry needed).`,
    });
  }
  say(`base image ${base} is not on the engine: docker build will pull it`);
}
