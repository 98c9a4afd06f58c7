/**
 * Publish a JAliEn version (package + modulefile [+ explicit default] [+ alienv]) as one repository
 * revision, and switch the default version as one revision.
 *
 * Idempotence: the planned content is compared with the current revision through the repository
 * reader (content hashes); identical -> nothing is written (no new revision); different -> refused
 * unless `force`, which replaces the version's package and modulefile in the same revision.
 */
import { UsageError } from '../../base/errors.ts';
import {
  ALIENV_PATH, defaultFilePath, jalienVersionContent, modulefilePath, packageDir, parseDefaultVersion,
  renderAlienv, renderDefaultVersion, type PlannedEntry,
} from './content.ts';
import { applyPlanned, diffPlanned, openRepository, openTransaction, type Reader } from './repo-port.ts';
import { validateArch, validateJalienVersion } from './version.ts';

export interface ReleaseJalienOptions {
  version: string;
  arch: string;
  jars: string[];
  javaModule?: string;
  /** Make this version the module default (default true). */
  makeDefault?: boolean;
  force?: boolean;
  /** Tag the new revision (release --from-git tags with the version). */
  tag?: string;
  message?: string;
  onProgress?: (msg: string) => void;
}

export interface ReleaseJalienResult {
  version: string;
  arch: string;
  /** published: new version; replaced: --force over different content; unchanged: identical, nothing written. */
  status: 'published' | 'replaced' | 'unchanged';
  package: string;
  modulefile: string;
  /** The module default after the release. */
  default?: string;
  revision?: number;
  rootHash?: string;
  differences?: string[];
}

/** The current explicit default of a module, if any. */
export async function readDefault(reader: Reader, arch: string, module: string): Promise<string | undefined> {
  const p = defaultFilePath(arch, module);
  if (!(await reader.stat(p))) return undefined;
  return parseDefaultVersion((await reader.readFile(p)).toString('utf8'));
}

/** Versions of a module that have a modulefile, in publication-independent (lexical) order. */
export async function listVersions(reader: Reader, arch: string, module: string): Promise<string[]> {
  const dir = `${arch}/Modules/modulefiles/${module}`;
  if (!(await reader.stat(dir))) return [];
  return (await reader.ls(dir)).map((s) => s.path.split('/').pop()!).filter((n) => !n.startsWith('.')).sort();
}

/** Plan + compare without writing: what `releaseJalien` would do. */
export async function planJalienRelease(repoDir: string, opts: ReleaseJalienOptions): Promise<{ entries: PlannedEntry[]; status: ReleaseJalienResult['status'] | 'conflict'; differences: string[]; currentDefault?: string }> {
  const entries = await jalienVersionContent(opts);
  const reader = await openRepository(repoDir);
  const pkg = packageDir(opts.arch, opts.version);
  const currentDefault = await readDefault(reader, opts.arch, 'JAliEn');
  const present = (await reader.stat(pkg)) !== undefined || (await reader.stat(modulefilePath(opts.arch, 'JAliEn', opts.version))) !== undefined;
  if (!present) return { entries, status: 'published', differences: [], currentDefault };
  const differences = await diffPlanned(reader, entries, [pkg]);
  return { entries, status: differences.length ? 'conflict' : 'unchanged', differences, currentDefault };
}

export async function releaseJalien(repoDir: string, opts: ReleaseJalienOptions): Promise<ReleaseJalienResult> {
  const say = opts.onProgress ?? (() => {});
  const version = validateJalienVersion(opts.version, 'version');
  const arch = validateArch(opts.arch);
  const plan = await planJalienRelease(repoDir, { ...opts, version, arch });
  const base = { version, arch, package: packageDir(arch, version), modulefile: modulefilePath(arch, 'JAliEn', version) };
  if (plan.status === 'unchanged') {
    say(`JAliEn ${version}: identical content already published; nothing to do`);
    return { ...base, status: 'unchanged', default: plan.currentDefault };
  }
  if (plan.status === 'conflict' && !opts.force) {
    throw new UsageError(`JAliEn ${version} is already published with different content (${plan.differences.slice(0, 5).join(', ')}${plan.differences.length > 5 ? ', ...' : ''})`, {
      where: `${repoDir}: ${base.package}`,
      hint: 'publish a new build number (e.g. -2), or pass --force to replace it',
    });
  }
  const makeDefault = opts.makeDefault !== false;
  say(`JAliEn ${version}: publishing ${base.package} and ${base.modulefile}${makeDefault ? ' (new default)' : ''}`);
  const tx = await openTransaction(repoDir, { operation: `release jalien ${version}`, onProgress: say });
  try {
    if (plan.status === 'conflict') {
      await tx.remove(base.package);
      await tx.remove(base.modulefile);
    }
    await applyPlanned(tx, plan.entries);
    // alienv at the repository root: (re)written when missing or different.
    const reader = await openRepository(repoDir);
    const alienv = renderAlienv(arch);
    if ((await diffPlanned(reader, [{ kind: 'file', path: ALIENV_PATH, mode: 0o755, data: alienv }])).length) {
      await applyPlanned(tx, [{ kind: 'dir', path: 'bin', mode: 0o755 }, { kind: 'file', path: ALIENV_PATH, mode: 0o755, data: alienv }]);
    }
    if (makeDefault) {
      await applyPlanned(tx, [{ kind: 'file', path: defaultFilePath(arch, 'JAliEn'), mode: 0o644, data: renderDefaultVersion('JAliEn', version) }]);
    }
    const r = await tx.commit({ tag: opts.tag, message: opts.message ?? `JAliEn ${version}${makeDefault ? ' (default)' : ''}` });
    return {
      ...base,
      status: plan.status === 'conflict' ? 'replaced' : 'published',
      default: makeDefault ? version : plan.currentDefault,
      revision: r.revision,
      rootHash: r.rootHash,
      differences: plan.differences.length ? plan.differences : undefined,
    };
  } catch (err) {
    await tx.abort().catch(() => {});
    throw err;
  }
}

export interface SetDefaultResult {
  module: string;
  arch: string;
  version: string;
  previous?: string;
  status: 'switched' | 'unchanged';
  revision?: number;
  rootHash?: string;
}

/** Switch the default version of a module: one `.version` file, one revision (atomic for clients). */
export async function setDefaultVersion(repoDir: string, opts: { arch: string; version: string; module?: string; onProgress?: (m: string) => void }): Promise<SetDefaultResult> {
  const module = opts.module ?? 'JAliEn';
  const arch = validateArch(opts.arch);
  const version = module === 'JAliEn' ? validateJalienVersion(opts.version, 'version') : opts.version;
  const reader = await openRepository(repoDir);
  if (!(await reader.stat(modulefilePath(arch, module, version)))) {
    const known = await listVersions(reader, arch, module);
    throw new UsageError(`${module} ${version} is not published for ${arch}`, {
      where: `${repoDir}: ${modulefilePath(arch, module, version)}`,
      hint: known.length ? `publish it first, or choose one of: ${known.join(', ')}` : `publish it first with \`gridforge release ${module === 'JAliEn' ? 'jalien' : 'java32'}\``,
    });
  }
  const previous = await readDefault(reader, arch, module);
  if (previous === version) return { module, arch, version, previous, status: 'unchanged' };
  const tx = await openTransaction(repoDir, { operation: `release default ${module} ${version}`, onProgress: opts.onProgress });
  try {
    await applyPlanned(tx, [{ kind: 'file', path: defaultFilePath(arch, module), mode: 0o644, data: renderDefaultVersion(module, version) }]);
    const r = await tx.commit({ message: `${module} default ${previous ?? '(none)'} -> ${version}` });
    return { module, arch, version, previous, status: 'switched', revision: r.revision, rootHash: r.rootHash };
  } catch (err) {
    await tx.abort().catch(() => {});
    throw err;
  }
}
