/**
 * What a release puts into the repository, as a list of planned entries (before any transaction):
 * the JAliEn package, its modulefile, the explicit default, the alienv wrapper, and the Java
 * runtime's modulefile. Content is deterministic so an identical re-release compares equal.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { renderTemplate } from '../../templates/render.ts';
import { validateArch, validateJalienVersion } from './version.ts';

export type PlannedEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer }
  | { kind: 'file'; path: string; mode: number; source: string }
  | { kind: 'symlink'; path: string; target: string };

export const ALIENV_PATH = 'bin/alienv';

export function packageDir(arch: string, version: string): string {
  return `${arch}/Packages/JAliEn/${version}`;
}
export function modulefilesDir(arch: string, module: string): string {
  return `${arch}/Modules/modulefiles/${module}`;
}
export function modulefilePath(arch: string, module: string, version: string): string {
  return `${modulefilesDir(arch, module)}/${version}`;
}
export function defaultFilePath(arch: string, module: string): string {
  return `${modulefilesDir(arch, module)}/.version`;
}

export function renderDefaultVersion(module: string, version: string): Buffer {
  return Buffer.from(renderTemplate('modulefiles/default-version.tcl.hbs', { module, version }));
}

/** Parse `set ModulesVersion "<v>"` out of a `.version` file. */
export function parseDefaultVersion(text: string): string | undefined {
  return /^\s*set\s+ModulesVersion\s+"?([^"\s]+)"?/m.exec(text)?.[1];
}

export function renderAlienv(arch: string): Buffer {
  return Buffer.from(renderTemplate('modulefiles/alienv.sh.hbs', { arch }));
}

export interface JalienContentOptions {
  version: string;
  arch: string;
  jars: string[];
  /** Module the modulefile loads for Java (`Java`, `Java/17.0.19`); empty string = none. */
  javaModule?: string;
}

/** The package + modulefile of one JAliEn version (not the default, not alienv). */
export async function jalienVersionContent(opts: JalienContentOptions): Promise<PlannedEntry[]> {
  const version = validateJalienVersion(opts.version, 'version');
  const arch = validateArch(opts.arch);
  if (!opts.jars.length) throw new UsageError('no jar given', { where: '--jar', hint: 'pass the JAliEn jar(s): --jar alien-users.jar' });
  const names = new Set<string>();
  for (const jar of opts.jars) {
    const st = await stat(jar).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError(`${jar} is not a file`, { where: `--jar ${jar}`, hint: 'give the path of a built JAliEn jar' });
    const name = basename(jar);
    if (!/\.jar$/.test(name) || !/^[A-Za-z0-9._+-]+$/.test(name)) throw new UsageError(`${name} is not a plain .jar file name`, { where: `--jar ${jar}`, hint: 'rename it to letters, digits, ".", "_", "+", "-" ending in .jar' });
    if (names.has(name)) throw new UsageError(`two jars are named ${name}`, { where: `--jar ${jar}`, hint: 'jars share the package lib/ directory; give them distinct names' });
    names.add(name);
  }
  const javaModule = opts.javaModule ?? 'Java';
  if (javaModule && !/^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)?$/.test(javaModule)) {
    throw new UsageError(`"${javaModule}" is not a module name`, { where: 'release.jalien.javaModule', hint: 'use Java or Java/<version>' });
  }
  const jarNames = [...names].sort();
  const pkg = packageDir(arch, version);
  const entries: PlannedEntry[] = [
    { kind: 'dir', path: pkg, mode: 0o755 },
    { kind: 'dir', path: `${pkg}/bin`, mode: 0o755 },
    { kind: 'dir', path: `${pkg}/lib`, mode: 0o755 },
    { kind: 'file', path: `${pkg}/bin/jalien`, mode: 0o755, data: Buffer.from(renderTemplate('modulefiles/jalien-launcher.sh.hbs', { version })) },
    { kind: 'file', path: `${pkg}/version`, mode: 0o644, data: Buffer.from(`${version}\n`) },
  ];
  for (const jar of opts.jars) entries.push({ kind: 'file', path: `${pkg}/lib/${basename(jar)}`, mode: 0o644, source: jar });
  entries.push({
    kind: 'file',
    path: modulefilePath(arch, 'JAliEn', version),
    mode: 0o644,
    data: Buffer.from(renderTemplate('modulefiles/jalien.tcl.hbs', {
      version, arch, jars: [...jarNames].reverse(), javaModule, javaModuleName: javaModule.split('/')[0],
    })),
  });
  return entries;
}

/** The Java runtime's modulefile. */
export function javaModuleContent(arch: string, version: string, platform = 'i686'): PlannedEntry {
  return {
    kind: 'file',
    path: modulefilePath(arch, 'Java', version),
    mode: 0o644,
    data: Buffer.from(renderTemplate('modulefiles/java.tcl.hbs', { version, platform })),
  };
}

/** sha256 of a planned file's content. */
export async function contentHash(e: Extract<PlannedEntry, { kind: 'file' }>): Promise<string> {
  const h = createHash('sha256');
  if ('data' in e) return h.update(e.data).digest('hex');
  for await (const chunk of createReadStream(e.source)) h.update(chunk as Buffer);
  return h.digest('hex');
}
