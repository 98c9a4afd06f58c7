/**
 * Render an image's build context from the handlebars templates in templates/.
 *
 * read the image config (./config.ts) -> pick template set (templates/vobox or templates/job) -> render Dockerfile.hbs with
 * the package-manager partial (templates/partials/install-<pm>.hbs) -> render/copy rootfs/ (files
 * ending in .hbs are rendered and lose the suffix; per-service files are left out when the image
 * does not build that service in) -> hash the rendered context (the `io.gridforge.template-hash`
 * label). Rendering itself is templates/render.ts. Pure: nothing touches the disk except
 * `writeContext`.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../base/errors.ts';
import { makeTempDirBeside, openDirNoFollow, openExclusive } from '../base/safe-fs.ts';
import { readYamlFile, validateYaml } from '../base/yaml-file.ts';
import { renderText, TEMPLATES_DIR } from '../templates/render.ts';
import { OS_BIND_POINTS, SERVICES } from '../templates/vobox-contract.ts';
import { getImage, type ImageConfig, type ImagesConfig, type JobImageConfig, type VoboxImageConfig } from './config.ts';

export interface RenderedFile {
  /** Path inside the build context, '/'-separated, e.g. `Dockerfile`, `rootfs/etc/supervisord.conf`. */
  path: string;
  content: string;
  mode: number;
}

export interface RenderedImage {
  image: ImageConfig;
  dockerfile: string;
  /** Every file of the build context, sorted by path (the Dockerfile included). */
  files: RenderedFile[];
  /** sha256 over paths, modes and contents of the rendered context. */
  templateHash: string;
}

const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._:-]*$/;

/** Read a package list: one package a line, '#' comments, blank lines ignored. */
export function readPackageList(file: string, displayName = file): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err: any) {
    throw new UsageError(`cannot read the package list (${err?.code ?? err})`, {
      where: displayName,
      hint: 'Point the image\'s `packages` key at an existing file with one package a line.',
    });
  }
  const packages: string[] = [];
  text.split('\n').forEach((line, i) => {
    const name = line.replace(/#.*/, '').trim();
    if (!name) return;
    if (!PACKAGE_NAME.test(name)) {
      throw new UsageError(`'${name}' is not a package name`, {
        where: `${displayName}:${i + 1}`,
        hint: 'Write one package name per line (letters, digits, + . _ : -); comments start with #.',
      });
    }
    if (!packages.includes(name)) packages.push(name);
  });
  if (packages.length === 0) {
    throw new UsageError('the package list is empty', { where: displayName, hint: 'List at least one package, one a line.' });
  }
  return packages;
}

/** templates/vobox/packages.yaml: per package manager a base set, packages per batch flavour, repository setup steps. */
const VoboxPackages = z.record(
  z.string(),
  z.object({ base: z.array(z.string()), flavours: z.record(z.string(), z.array(z.string())), repoSetup: z.record(z.string(), z.array(z.string())).optional() }),
);

/** What every Dockerfile template needs of an image: its name, OS and base, and the install partial. */
function commonContext(img: VoboxImageConfig | JobImageConfig) {
  return {
    name: img.name,
    os: img.os,
    base: img.base.image,
    packageManager: img.base.packageManager,
    installPartial: `install-${img.base.packageManager}`,
  };
}

function voboxContext(img: VoboxImageConfig) {
  const file = path.join(TEMPLATES_DIR, 'vobox', 'packages.yaml');
  const data = validateYaml(readYamlFile(file), VoboxPackages);
  const pm = data[img.base.packageManager];
  const flavourPackages = pm?.flavours?.[img.flavour];
  if (!pm || !flavourPackages) {
    throw new UsageError(`no VO-box packages for flavour ${img.flavour} on ${img.base.packageManager} bases`, {
      where: `images.${img.name}`,
      hint: `Pick a flavour listed under ${img.base.packageManager} in templates/vobox/packages.yaml.`,
    });
  }
  return {
    ...commonContext(img),
    flavour: img.flavour,
    services: img.services,
    uid: img.uid,
    packages: [...pm.base, ...flavourPackages],
    repoSetup: pm.repoSetup?.[img.flavour] ?? [],
  };
}

function jobContext(config: ImagesConfig, img: JobImageConfig) {
  const rel = path.relative(config.root, img.packagesFile).split(path.sep).join('/');
  return {
    ...commonContext(img),
    packagesList: rel,
    packages: readPackageList(img.packagesFile, rel),
    repoSetup: [],
    // Only the bind points the OS base does not already have (templates/vobox-contract.ts).
    bindDirs: img.bindPoints.filter((p) => !OS_BIND_POINTS.has(p)),
  };
}

/** Which service a rootfs file belongs to (left out when the image does not build that service in). */
function serviceOf(rel: string): string | undefined {
  const base = path.posix.basename(rel).replace(/\.hbs$/, '');
  if (rel.startsWith('etc/gridforge/services/')) return base.replace(/\.conf$/, '');
  const m = /^gridforge-(.+?)(-start|-version)?$/.exec(base);
  if (m && rel.startsWith('usr/local/bin/')) return (SERVICES as readonly string[]).find((s) => m[1] === s);
  return undefined;
}

function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...walk(path.join(dir, entry.name), rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/** Render the whole build context of one image. */
export function renderImage(config: ImagesConfig, name: string): RenderedImage {
  const img = getImage(config, name);
  const setDir = path.join(TEMPLATES_DIR, img.kind);
  const context = img.kind === 'vobox' ? voboxContext(img) : jobContext(config, img);

  const dockerfileTemplate = path.join(setDir, 'Dockerfile.hbs');
  const dockerfile = renderText(dockerfileTemplate, readFileSync(dockerfileTemplate, 'utf8'), context);
  const files: RenderedFile[] = [{ path: 'Dockerfile', content: dockerfile, mode: 0o644 }];

  const rootfs = path.join(setDir, 'rootfs');
  for (const rel of walk(rootfs).sort()) {
    const service = serviceOf(rel);
    if (service && img.kind === 'vobox' && !img.services.includes(service as any)) continue;
    const src = path.join(rootfs, rel);
    const text = readFileSync(src, 'utf8');
    const isTemplate = rel.endsWith('.hbs');
    const out = isTemplate ? rel.slice(0, -4) : rel;
    const content = isTemplate ? renderText(src, text, context) : text;
    // Modes are decided here, not by the checkout: programs 0755, everything else 0644.
    const executable = /^usr\/local\/s?bin\//.test(out) || (statSync(src).mode & 0o100) !== 0;
    files.push({ path: `rootfs/${out}`, content, mode: executable ? 0o755 : 0o644 });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { image: img, dockerfile, files, templateHash: hashFiles(files) };
}

export function hashFiles(files: RenderedFile[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    const body = Buffer.from(f.content, 'utf8');
    h.update(`${f.path}\0${f.mode.toString(8)}\0${body.length}\0`);
    h.update(body);
  }
  return `sha256:${h.digest('hex')}`;
}

/**
 * Write a rendered context into `dir` (created; must not exist or be empty). Built in a private
 * directory with a random name beside it (base/safe-fs.ts makeTempDirBeside; files created
 * exclusively, never following a planted symlink) and renamed, so a failure leaves nothing
 * half-written and nobody else's file is ever written or chmodded.
 */
export async function writeContext(rendered: RenderedImage, dir: string): Promise<void> {
  const target = path.resolve(dir);
  const existing = lstatOrNull(target);
  if (existing && (!existing.isDirectory() || readdirSync(target).length > 0)) {
    throw new UsageError(existing.isDirectory() ? 'the output folder exists and is not empty' : 'the output path exists and is not a folder', {
      where: dir,
      hint: 'Choose a new folder (or remove this one) for --context.',
    });
  }
  mkdirSync(path.dirname(target), { recursive: true }); // as before: missing parent folders are made
  const tmp = makeTempDirBeside(target);
  try {
    for (const f of rendered.files) {
      const p = path.join(tmp, ...f.path.split('/'));
      mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
      writeNewFile(p, f.content, f.mode);
    }
    // The private 0700 directory becomes a normal readable context folder.
    const dfd = openDirNoFollow(tmp);
    try {
      fchmodSync(dfd, 0o755);
    } finally {
      closeSync(dfd);
    }
    if (existing) rmdirSync(target); // empty (checked above); rmdir refuses if that changed since
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** Create `file` exclusively (O_EXCL|O_NOFOLLOW) with `mode` set by fchmod (umask does not change it). */
function writeNewFile(file: string, content: string, mode: number): void {
  const fd = openExclusive(file, 0o600);
  try {
    writeSync(fd, Buffer.from(content, 'utf8'));
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}
