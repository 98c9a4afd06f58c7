/**
 * Project config (`gridforge.yaml`): one zod schema, one loader.
 *
 * `loadConfig(file)` reads YAML, validates it (objects are strict: unknown keys fail), checks the
 * cross-field rules (an image's `os` names a base; `htcondor` needs an rpm base; package-list files
 * exist) and returns a typed `ProjectConfig` with paths resolved against the config file's folder.
 * Every failure is a `UsageError` (exit 2) naming the file, the key path and what was expected.
 *
 * Sections: `images` (VO-box variants and job images), `bases` (base image per OS family),
 * `prefix` (registry/tag prefix), `repository` (used by repo/release), `release` (owned
 * semantically by the release capability, which may extend `ReleaseSchema`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { z } from 'zod';
import { UsageError } from './errors.ts';

/** VO-box services, in the order they are documented; supervisord program names equal these. */
export const SERVICES = ['ce', 'monalisa', 'batch', 'cron', 'rsyslog', 'proxy-renewal', 'sshd'] as const;
export type ServiceName = (typeof SERVICES)[number];
/** Started when GRIDFORGE_SERVICES is unset: the services that need nothing from the site. */
export const DEFAULT_SERVICES: ServiceName[] = ['cron', 'rsyslog', 'sshd'];
export const FLAVOURS = ['htcondor', 'slurm', 'none'] as const;
export type Flavour = (typeof FLAVOURS)[number];
export const PACKAGE_MANAGERS = ['apt', 'dnf'] as const;
export type PackageManager = (typeof PACKAGE_MANAGERS)[number];
/** Bind points unprivileged runtimes need to exist in a job image (REFERENCES section 2). */
export const DEFAULT_BIND_POINTS = ['/cvmfs', '/workdir', '/srv', '/etc/localtime'];

/** A docker tag component: what may appear in `<os>-<variant>-<version>`. */
const tagPart = z
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
    /** Extra bind points to pre-create (added to /cvmfs, /workdir, /srv, /etc/localtime). */
    bindPoints: z.array(absPath).optional(),
  })
  .strict();

export const ImageSchema = z.discriminatedUnion('kind', [VoboxImageSchema, JobImageSchema]);

export const RepositorySchema = z
  .object({
    /** Repository directory (relative to the config file). */
    dir: z.string().min(1),
    /** Repository name, e.g. alice.cern.ch. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'expected a repository name like alice.cern.ch'),
    /** Folder with the repository's master key, certificate and keys (relative to the config file). */
    keys: z.string().min(1),
  })
  .strict();

/** Release section: owned semantically by the release capability (cvmfs-publish/jalien, java32). */
export const ReleaseSchema = z
  .object({
    jalien: z
      .object({
        /** Platform directory in the repository, e.g. el9-x86_64. */
        arch: z.string().min(1),
        /** Jar files of a release (relative to the config file); `release --from-git` publishes them. */
        jars: z.array(z.string().min(1)).nonempty().optional(),
        /** Module the JAliEn modulefile loads for its Java (default `Java`: the Java runtime's default). */
        javaModule: z.string().min(1).optional(),
        /** Images `release --from-git` builds and flattens with the version (default: all images). */
        images: z.array(z.string().min(1)).optional(),
        /** Job images published as sandboxes containers/fs/singularity/<name>-<version> (default: all job images). */
        sandboxes: z.array(z.string().min(1)).optional(),
      })
      .strict(),
    /** 32-bit Java runtime: i386 JDK and libraries (dirs, .debs, tarballs; relative to the config file). */
    java32: z
      .object({
        jdk: z.string().min(1),
        libs: z.array(z.string().min(1)).nonempty(),
        /** Where worker nodes mount the repository (default /cvmfs/<repository.name>). */
        mountPrefix: z.string().regex(/^\//, 'expected an absolute path such as /cvmfs/alice.cern.ch').optional(),
      })
      .strict()
      .optional(),
    /** JobAgent startup script defaults (`gridforge render jobagent-startup`). */
    jobagent: z
      .object({
        xms: z.string().regex(/^[0-9]+[kKmMgG]$/, 'expected a JVM size such as 16M').default('16M'),
        xmx: z.string().regex(/^[0-9]+[kKmMgG]$/, 'expected a JVM size such as 64M').default('64M'),
        /** The JobAgent main class. */
        mainClass: z.string().regex(/^[A-Za-z_][\w.$]*$/, 'expected a Java class name').default('alien.site.JobRunner'),
        /** Jar (in the JAliEn package's lib/) holding the class. */
        jar: z.string().min(1).default('alien-users.jar'),
      })
      .strict()
      .default({}),
  })
  .strict();

export const ConfigSchema = z
  .object({
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
    repository: RepositorySchema.default({ dir: '.gridforge/repo', name: 'alice.gridforge.local', keys: '.gridforge/keys' }),
    release: ReleaseSchema.default({ jalien: { arch: 'el9-x86_64' } }),
  })
  .strict();

type RawConfig = z.infer<typeof ConfigSchema>;

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

export interface ProjectConfig {
  /** Absolute path of the config file. */
  file: string;
  /** Folder of the config file; relative paths resolve against it. */
  root: string;
  prefix: string;
  version: string;
  source?: string;
  bases: Record<string, ResolvedBase>;
  images: Record<string, ImageConfig>;
  /** Paths are absolute (resolved against `root`). */
  repository: RawConfig['repository'];
  release: RawConfig['release'];
}

const HINT = 'Fix the key in the config file (see the commented example gridforge.yaml at the repository root).';

function keyPath(p: (string | number)[]): string {
  return p.length === 0 ? '(top level)' : p.map((k) => (typeof k === 'number' ? `[${k}]` : k)).join('.').replace(/\.\[/g, '[');
}

function describeIssue(issue: z.ZodIssue): string {
  const at = keyPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${at}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    case 'invalid_type':
      return issue.received === 'undefined'
        ? `${at}: missing (expected ${issue.expected})`
        : `${at}: expected ${issue.expected}, got ${issue.received}`;
    case 'invalid_enum_value':
      return `${at}: '${String(issue.received)}' is not one of ${issue.options.map(String).join(', ')}`;
    case 'invalid_literal':
      return `${at}: expected ${JSON.stringify(issue.expected)}`;
    case 'invalid_union_discriminator':
      return `${at}: expected one of ${issue.options.map(String).join(', ')}`;
    default:
      return `${at}: ${issue.message}`;
  }
}

/** Allowed keys of the object schema at `p`, to suggest the right spelling of an unknown key. */
function allowedKeysAt(raw: unknown, p: (string | number)[]): string[] | undefined {
  const top = Object.keys(ConfigSchema.shape);
  if (p.length === 0) return top;
  if (p[0] === 'images' && p.length === 2) {
    const kind = (raw as any)?.images?.[p[1]]?.kind;
    if (kind === 'vobox') return Object.keys(VoboxImageSchema.shape);
    if (kind === 'job') return Object.keys(JobImageSchema.shape);
  }
  if (p[0] === 'bases' && p.length === 2) return Object.keys(BaseSchema.shape);
  if (p[0] === 'repository' && p.length === 1) return Object.keys(RepositorySchema.shape);
  if (p[0] === 'release' && p.length === 1) return Object.keys(ReleaseSchema.shape);
  return undefined;
}

function inferPackageManager(os: string): PackageManager | undefined {
  if (/^(debian|ubuntu)/.test(os)) return 'apt';
  if (/^(el\d*|alma|rocky|centos|rhel|fedora)/.test(os)) return 'dnf';
  return undefined;
}

/** Validate an already-parsed document; `file` is only used in messages and to resolve paths. */
export function parseConfig(raw: unknown, file: string): ProjectConfig {
  const abs = path.resolve(file);
  const root = path.dirname(abs);
  const fail = (problems: string[], hint = HINT): never => {
    throw new UsageError(
      problems.length === 1 ? problems[0] : `${problems.length} problems: ${problems.join('; ')}`,
      { where: file, hint },
    );
  };
  if (raw === null || raw === undefined) fail(['the file is empty (expected a mapping with prefix, bases and images)']);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      let text = describeIssue(issue);
      if (issue.code === 'unrecognized_keys') {
        const allowed = allowedKeysAt(raw, issue.path);
        if (allowed) text += ` (expected one of: ${allowed.join(', ')})`;
      }
      return text;
    });
    fail(problems);
  }
  const cfg = parsed.data!;
  const problems: string[] = [];

  const bases: Record<string, ResolvedBase> = {};
  for (const [os, base] of Object.entries(cfg.bases)) {
    const pm = base.packageManager ?? inferPackageManager(os);
    if (!pm) {
      problems.push(`bases.${os}.packageManager: missing (expected apt or dnf; it cannot be inferred from the family name '${os}')`);
      continue;
    }
    bases[os] = { image: base.image, packageManager: pm };
  }

  const images: Record<string, ImageConfig> = {};
  for (const [name, img] of Object.entries(cfg.images)) {
    const at = `images.${name}`;
    const base = bases[img.os];
    if (!cfg.bases[img.os]) {
      problems.push(`${at}.os: '${img.os}' is not a key of bases (expected one of: ${Object.keys(cfg.bases).join(', ') || 'none defined'})`);
      continue;
    }
    if (!base) continue;
    const common = {
      name,
      os: img.os,
      base,
      version: img.version ?? cfg.version,
      labels: img.labels ?? {},
    };
    if (img.kind === 'vobox') {
      if (img.flavour === 'htcondor' && base.packageManager !== 'dnf') {
        problems.push(`${at}.flavour: htcondor is built on EL (dnf) bases only, but os '${img.os}' uses ${base.packageManager} (use flavour slurm or none, or an EL base)`);
      }
      let services = img.services ? [...new Set(img.services)] : [...SERVICES];
      if (img.flavour === 'none') {
        if (img.services?.includes('batch')) problems.push(`${at}.services: 'batch' needs a batch flavour, but flavour is none (remove batch or set flavour slurm/htcondor)`);
        services = services.filter((s) => s !== 'batch');
      }
      images[name] = { ...common, kind: 'vobox', variant: img.variant ?? img.flavour, flavour: img.flavour, services, uid: img.uid };
    } else {
      const packagesFile = path.resolve(root, img.packages);
      if (!existsSync(packagesFile) || !statSync(packagesFile).isFile()) {
        problems.push(`${at}.packages: package list file '${img.packages}' not found (looked for ${packagesFile}; expected a file with one package a line, e.g. images/packages/job-debian.txt)`);
      }
      const bindPoints = [...new Set([...DEFAULT_BIND_POINTS, ...(img.bindPoints ?? [])])];
      images[name] = { ...common, kind: 'job', variant: img.variant ?? 'job', packagesFile, bindPoints };
    }
  }
  if (problems.length) fail(problems);

  return {
    file: abs,
    root,
    prefix: cfg.prefix,
    version: cfg.version,
    source: cfg.source,
    bases,
    images,
    repository: {
      dir: path.resolve(root, cfg.repository.dir),
      name: cfg.repository.name,
      keys: path.resolve(root, cfg.repository.keys),
    },
    release: cfg.release,
  };
}

/** Read, parse and validate the project config. Throws UsageError (exit 2) on any problem. */
export function loadConfig(file = 'gridforge.yaml'): ProjectConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err: any) {
    throw new UsageError(`cannot read the config file (${err?.code ?? err?.message ?? err})`, {
      where: file,
      hint: 'Pass an existing file with --config <file>, or run from the repository root where gridforge.yaml lives.',
    });
  }
  let raw: unknown;
  try {
    raw = loadYaml(text, { filename: file });
  } catch (err: any) {
    const mark = err?.mark ? `:${err.mark.line + 1}:${err.mark.column + 1}` : '';
    const reason = err?.reason ?? String(err?.message ?? err).split('\n')[0];
    throw new UsageError(`malformed YAML: ${reason}`, {
      where: `${file}${mark}`,
      hint: 'Fix the YAML syntax at that line (indentation with spaces, "key: value", quoted strings with ":" or "#").',
    });
  }
  return parseConfig(raw, file);
}

/** Look up one image by name; unknown names are usage errors that list the known ones. */
export function getImage(config: ProjectConfig, name: string): ImageConfig {
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
export function imageRef(config: ProjectConfig, img: ImageConfig, version = img.version): string {
  return `${config.prefix}/${img.name}:${img.os}-${img.variant}-${version}`;
}
