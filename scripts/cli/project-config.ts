/**
 * The project config (`gridforge.yaml`), composed from the sections each capability owns: images
 * (images/config.ts: prefix, version, source, bases, images), the repository
 * (cvmfs-publish/repository-config.ts) and the release (release/config.ts). `loadConfig(file)`
 * reads the file (base/yaml-file.ts: size-bounded, syntax errors at file:line:column), validates
 * it (objects are strict: unknown keys fail, listing the allowed ones), checks the cross-field
 * rules and returns a typed `ProjectConfig` with paths resolved against the file's folder. Every
 * failure is a `UsageError` (exit 2) naming the file, every key path at fault and the fix.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../../base/errors.ts';
import { keyPath, readYamlFile } from '../../base/yaml-file.ts';
import { allowedImageKeysAt, imagesShape, resolveImages, type ImagesConfig } from '../../images/config.ts';
import { DEFAULT_REPOSITORY, RepositorySchema, resolveRepository, type RepositoryConfig } from '../../cvmfs-publish/repository-config.ts';
import { DEFAULT_RELEASE, ReleaseSchema, type ReleaseConfig } from '../../release/config.ts';

export const ConfigSchema = z
  .object({
    ...imagesShape,
    repository: RepositorySchema.default(DEFAULT_REPOSITORY),
    release: ReleaseSchema.default(DEFAULT_RELEASE),
  })
  .strict();

export interface ProjectConfig extends ImagesConfig {
  /** Paths are absolute (resolved against `root`). */
  repository: RepositoryConfig;
  release: ReleaseConfig;
}

const HINT = 'Fix the key in the config file (see the commented example gridforge.yaml at the repository root).';

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
  if (p.length === 0) return Object.keys(ConfigSchema.shape);
  if (p[0] === 'repository' && p.length === 1) return Object.keys(RepositorySchema.shape);
  if (p[0] === 'release' && p.length === 1) return Object.keys(ReleaseSchema.shape);
  return allowedImageKeysAt(raw, p);
}

function fail(problems: string[], file: string): never {
  throw new UsageError(problems.length === 1 ? problems[0] : `${problems.length} problems: ${problems.join('; ')}`, { where: file, hint: HINT });
}

function schemaProblems(raw: unknown, issues: z.ZodIssue[]): string[] {
  return issues.map((issue) => {
    let text = describeIssue(issue);
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(raw, issue.path);
      if (allowed) text += ` (expected one of: ${allowed.join(', ')})`;
    }
    return text;
  });
}

/** Validate an already-parsed document; `file` is only used in messages and to resolve paths. */
export function parseConfig(raw: unknown, file: string): ProjectConfig {
  const abs = path.resolve(file);
  const root = path.dirname(abs);
  if (raw === null || raw === undefined) fail(['the file is empty (expected a mapping with prefix, bases and images)'], file);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) fail(schemaProblems(raw, parsed.error.issues), file);
  const cfg = parsed.data;
  const problems: string[] = [];
  const images = resolveImages(cfg, abs, root, problems);
  if (problems.length) fail(problems, file);
  return { ...images, repository: resolveRepository(cfg.repository, root), release: cfg.release };
}

/**
 * Read the file with base/yaml-file.ts, keeping this command's wording ("cannot read the config
 * file", "malformed YAML") that users and test/images/build/bad-input.test.ts know.
 */
function readConfigYaml(file: string): unknown {
  try {
    return readYamlFile(file, { missingHint: 'Pass an existing file with --config <file>, or run from the repository root where gridforge.yaml lives.' }).doc;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const message = err.message.replace(/^cannot read the file /, 'cannot read the config file ').replace(/^not valid YAML: /, 'malformed YAML: ');
    throw new UsageError(message, { where: err.where, hint: err.hint, detail: err.detail, cause: err });
  }
}

/** Read, parse and validate the project config. Throws UsageError (exit 2) on any problem. */
export function loadConfig(file = 'gridforge.yaml'): ProjectConfig {
  return parseConfig(readConfigYaml(file), file);
}

/** `repository.dir` of the project config named by the global --config (default gridforge.yaml), when that file exists. */
export function configuredRepoDir(cmd: { optsWithGlobals(): unknown }): string | undefined {
  const file = (cmd.optsWithGlobals() as { config?: string }).config ?? 'gridforge.yaml';
  return existsSync(file) ? loadConfig(file).repository.dir : undefined;
}
