/**
 * The image part of the project config (`gridforge.yaml`): `prefix`, `version`, `source`,
 * `bases` and `images`. Schemas, the cross-field rules (an image's `os` names a base; htcondor
 * needs a dnf base; package-list files exist), the resolved types, and the two look-ups every
 * image command needs (getImage, imageRef). The CLI composes this section with the repository and
 * release sections (scripts/cli/project-config.ts); render.ts and build.ts take the result.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../base/errors.ts';
import { JOB_BIND_POINTS, SERVICES, type ServiceName } from '../templates/vobox-contract.ts';

export const FLAVOURS = ['htcondor', 'slurm', 'none'] as const;
export type Flavour = (typeof FLAVOURS)[number];
export const PACKAGE_MANAGERS = ['apt', 'dnf'] as const;
export type PackageManager = (typeof PACKAGE_MANAGERS)[number];

/** A docker tag component: what may appear in `<os>-<variant>-<version>`. */
export const tagPart = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected letters, digits, ".", "_" or "-" (a docker tag component)');
const nameKey = /^[a-z0-9][a-z0-9._-]*$/;
const absPath = z.string().regex(/^\/[^\0]*$/, 'expected an absolute path inside the image');

export const BaseSchema = z
  .object({
    /** Image reference the Dockerfile starts FROM (a registry image in production). */
    image: z.string().min(1, 'expected an image reference such as almalinux:9'),
    /** apt (Debian family) or dnf (EL family); inferred from the family name when absent. */
    packageManager: z.enum(PACKAGE_MANAGERS).optional(),
  })
  .strict();

const imageCommon = {
  /** OS family: a key of `bases`. */
  os: z.string().min(1),
  /** Version part of the tag; defaults to the top-level `version`. */
  version: tagPart.optional(),
  /** Variant part of the tag; defaults to the flavour (VO-box) or `job`. */
  variant: tagPart.optional(),
  /** Extra image labels. */
  labels: z.record(z.string()).optional(),
};

export const VoboxImageSchema = z
  .object({
    kind: z.literal('vobox'),
    ...imageCommon,
    /** Batch-system flavour: htcondor (EL bases), slurm (EL and Debian bases), none. */
    flavour: z.enum(FLAVOURS),
    /** Services built into the image (default: all; `batch` only when flavour is not none). */
    services: z.array(z.enum(SERVICES)).nonempty().optional(),
    /** uid of the service user alicesgm. */
    uid: z.number().int().min(1).max(65533).default(1000),
  })
  .strict();

export const JobImageSchema = z
  .object({
    kind: z.literal('job'),
    ...imageCommon,
    /** Package list file (one package a line, # comments), relative to the config file. */
    packages: z.string().min(1),
    /** Extra bind points to pre-create (added to JOB_BIND_POINTS of templates/vobox-contract.ts). */
    bindPoints: z.array(absPath).optional(),
  })
  .strict();

export const ImageSchema = z.discriminatedUnion('kind', [VoboxImageSchema, JobImageSchema]);

/** The top-level keys this section owns, as zod shapes (ConfigSchema spreads them). */
export const imagesShape = {
  /** Registry/tag prefix: images are tagged <prefix>/<name>:<os>-<variant>-<version>. */
  prefix: z
    .string()
    .regex(/^[a-z0-9]+([._:/-][a-z0-9]+)*$/, 'expected a lower-case registry/namespace prefix such as gridforge or registry.cern.ch/alice'),
  /** Default image version (tag component). */
  version: tagPart.default('0.1.0'),
  /** Value of the org.opencontainers.image.source label (default: git remote origin). */
  source: z.string().min(1).optional(),
  bases: z.record(z.string().regex(nameKey, 'expected a lower-case OS family name such as debian or el9'), BaseSchema),
  images: z.record(z.string().regex(nameKey, 'expected a lower-case image name such as vobox-slurm'), ImageSchema),
};
const ImagesSectionSchema = z.object(imagesShape);
export type RawImagesSection = z.infer<typeof ImagesSectionSchema>;

export interface ResolvedBase {
  image: string;
  packageManager: PackageManager;
}

interface ImageCommon {
  name: string;
  os: string;
  base: ResolvedBase;
  version: string;
  variant: string;
  labels: Record<string, string>;
}
export interface VoboxImageConfig extends ImageCommon {
  kind: 'vobox';
  flavour: Flavour;
  services: ServiceName[];
  uid: number;
}
export interface JobImageConfig extends ImageCommon {
  kind: 'job';
  /** Absolute path of the package list file. */
  packagesFile: string;
  bindPoints: string[];
}
export type ImageConfig = VoboxImageConfig | JobImageConfig;

/** The resolved image config: what render.ts and build.ts take. */
export interface ImagesConfig {
  /** Absolute path of the config file. */
  file: string;
  /** Folder of the config file; relative paths resolve against it. */
  root: string;
  prefix: string;
  version: string;
  source?: string;
  bases: Record<string, ResolvedBase>;
  images: Record<string, ImageConfig>;
}

/** Allowed keys of the image object schema at `p` (for "did you mean" in unknown-key errors). */
export function allowedImageKeysAt(raw: unknown, p: (string | number)[]): string[] | undefined {
  if (p[0] === 'images' && p.length === 2) {
    const kind = (raw as any)?.images?.[p[1]]?.kind;
    if (kind === 'vobox') return Object.keys(VoboxImageSchema.shape);
    if (kind === 'job') return Object.keys(JobImageSchema.shape);
  }
  if (p[0] === 'bases' && p.length === 2) return Object.keys(BaseSchema.shape);
  return undefined;
}

function inferPackageManager(os: string): PackageManager | undefined {
  if (/^(debian|ubuntu)/.test(os)) return 'apt';
  if (/^(el\d*|alma|rocky|centos|rhel|fedora)/.test(os)) return 'dnf';
  return undefined;
}

function resolveBases(raw: RawImagesSection, problems: string[]): Record<string, ResolvedBase> {
  const bases: Record<string, ResolvedBase> = {};
  for (const [os, base] of Object.entries(raw.bases)) {
    const pm = base.packageManager ?? inferPackageManager(os);
    if (!pm) {
      problems.push(`bases.${os}.packageManager: missing (expected apt or dnf; it cannot be inferred from the family name '${os}')`);
      continue;
    }
    bases[os] = { image: base.image, packageManager: pm };
  }
  return bases;
}

type RawImage = z.infer<typeof ImageSchema>;

function resolveVobox(img: RawImage & { kind: 'vobox' }, common: Omit<ImageCommon, 'variant'>, at: string, problems: string[]): VoboxImageConfig {
  if (img.flavour === 'htcondor' && common.base.packageManager !== 'dnf') {
    problems.push(`${at}.flavour: htcondor is built on EL (dnf) bases only, but os '${img.os}' uses ${common.base.packageManager} (use flavour slurm or none, or an EL base)`);
  }
  let services = img.services ? [...new Set(img.services)] : [...SERVICES];
  if (img.flavour === 'none') {
    if (img.services?.includes('batch')) problems.push(`${at}.services: 'batch' needs a batch flavour, but flavour is none (remove batch or set flavour slurm/htcondor)`);
    services = services.filter((s) => s !== 'batch');
  }
  return { ...common, kind: 'vobox', variant: img.variant ?? img.flavour, flavour: img.flavour, services, uid: img.uid };
}

function resolveJob(img: RawImage & { kind: 'job' }, common: Omit<ImageCommon, 'variant'>, at: string, root: string, problems: string[]): JobImageConfig {
  const packagesFile = path.resolve(root, img.packages);
  if (!existsSync(packagesFile) || !statSync(packagesFile).isFile()) {
    problems.push(`${at}.packages: package list file '${img.packages}' not found (looked for ${packagesFile}; expected a file with one package a line, e.g. images/packages/job-debian.txt)`);
  }
  const bindPoints = [...new Set([...JOB_BIND_POINTS, ...(img.bindPoints ?? [])])];
  return { ...common, kind: 'job', variant: img.variant ?? 'job', packagesFile, bindPoints };
}

/** Resolve the schema-valid image section; cross-field problems are pushed onto `problems`. */
export function resolveImages(raw: RawImagesSection, file: string, root: string, problems: string[]): ImagesConfig {
  const bases = resolveBases(raw, problems);
  const images: Record<string, ImageConfig> = {};
  for (const [name, img] of Object.entries(raw.images)) {
    const at = `images.${name}`;
    const base = bases[img.os];
    if (!raw.bases[img.os]) {
      problems.push(`${at}.os: '${img.os}' is not a key of bases (expected one of: ${Object.keys(raw.bases).join(', ') || 'none defined'})`);
      continue;
    }
    if (!base) continue;
    const common = { name, os: img.os, base, version: img.version ?? raw.version, labels: img.labels ?? {} };
    images[name] = img.kind === 'vobox' ? resolveVobox(img, common, at, problems) : resolveJob(img, common, at, root, problems);
  }
  return { file, root, prefix: raw.prefix, version: raw.version, source: raw.source, bases, images };
}

/** Look up one image by name; unknown names are usage errors that list the known ones. */
export function getImage(config: ImagesConfig, name: string): ImageConfig {
  const img = config.images[name];
  if (!img) {
    throw new UsageError(`no image named '${name}'`, {
      where: `${config.file}: images`,
      hint: `Use one of: ${Object.keys(config.images).join(', ') || '(none defined)'}; or add images.${name} to the config.`,
    });
  }
  return img;
}

/** The tag an image gets: <prefix>/<name>:<os>-<variant>-<version>. */
export function imageRef(config: Pick<ImagesConfig, 'prefix'>, img: ImageConfig, version = img.version): string {
  return `${config.prefix}/${img.name}:${img.os}-${img.variant}-${version}`;
}
