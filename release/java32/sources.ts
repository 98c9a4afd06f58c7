/**
 * Input side of the runtime assembly: turn `--jdk` / `--libs` arguments (a directory, a `.deb`, a
 * `.tar.gz`) into plain directory trees ("roots") and find the JDK home inside them.
 * `.deb` files are unpacked with `dpkg-deb -x`, tarballs with GNU tar; nothing is installed and
 * nothing outside the given work directory is written.
 */
import { execa } from 'execa';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { readElf, EM_386 } from './elf.ts';

export type SourceKind = 'dir' | 'deb' | 'tar';

export function sourceKind(path: string): SourceKind | undefined {
  if (/\.deb$/.test(path)) return 'deb';
  if (/\.(tar\.gz|tgz|tar\.xz|tar\.zst|tar)$/.test(path)) return 'tar';
  return undefined;
}

/**
 * Make `path` available as a directory tree. Directories are used in place (read only); archives
 * are unpacked under `workDir`. Several `.deb`s may share one root (`into`).
 */
export async function unpackSource(path: string, workDir: string, into?: string, flag = '--libs'): Promise<string> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new UsageError(`${path} does not exist`, { where: `${flag} ${path}`, hint: 'give a directory, a .deb or a .tar.gz (fetch Debian i386 packages with scripts/fetch-i386.sh)' });
  }
  if (st.isDirectory()) return path;
  const kind = sourceKind(path);
  if (!kind) {
    throw new UsageError(`${path} is neither a directory nor a .deb / .tar.gz`, { where: `${flag} ${path}`, hint: 'give a directory, a .deb or a .tar.gz' });
  }
  const dest = into ?? join(workDir, `src-${basename(path).replace(/[^A-Za-z0-9._-]/g, '_')}`);
  await mkdir(dest, { recursive: true });
  try {
    if (kind === 'deb') await execa('dpkg-deb', ['-x', path, dest]);
    else await execa('tar', ['-xf', path, '-C', dest, '--no-same-owner']);
  } catch (err) {
    throw new UsageError(`cannot unpack ${path}: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`, {
      where: `${flag} ${path}`,
      hint: 'check that the file is a complete .deb / tarball',
    });
  }
  return dest;
}

/** A JDK found inside a root: its home directory and version (from the `release` file). */
export interface JdkHome {
  root: string;
  home: string;
  version: string;
}

async function isI386Java(home: string): Promise<boolean> {
  try {
    const info = await readElf(join(home, 'bin', 'java'));
    return info?.machine === EM_386 && info.bits === 32;
  } catch {
    return false;
  }
}

/** Find a 32-bit x86 JDK home in `root`: the root itself, `usr/lib/jvm/*`, or a top-level directory of a tarball. */
export async function findJdkHome(root: string, flag = '--jdk'): Promise<JdkHome> {
  const candidates: string[] = [root];
  const jvmDir = join(root, 'usr', 'lib', 'jvm');
  for (const base of [jvmDir, root]) {
    let names: string[] = [];
    try {
      names = (await readdir(base, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch { /* absent */ }
    for (const n of names) candidates.push(join(base, n));
  }
  const seen: string[] = [];
  for (const c of candidates) {
    try {
      await stat(join(c, 'bin', 'java'));
    } catch {
      continue;
    }
    seen.push(c);
    if (await isI386Java(c)) return { root, home: c, version: await jdkVersion(c) };
  }
  throw new UsageError(
    seen.length ? `the JDK at ${seen[0]} is not a 32-bit x86 (i386) JDK` : `no JDK (bin/java) found in ${root}`,
    { where: flag, hint: 'give the i386 JDK: openjdk-17-jre-headless_*_i386.deb from scripts/fetch-i386.sh, its unpacked tree, or a tarball of it' },
  );
}

/** JAVA_VERSION from the JDK's `release` file (e.g. 17.0.19). */
export async function jdkVersion(home: string): Promise<string> {
  let text = '';
  try {
    text = await readFile(join(home, 'release'), 'utf8');
  } catch {
    throw new UsageError(`${join(home, 'release')} is missing, so the JDK version is unknown`, { where: '--jdk', hint: 'pass --jdk-version <version>' });
  }
  const m = /^JAVA_VERSION="?([^"\n]+)"?/m.exec(text);
  if (!m) throw new UsageError(`no JAVA_VERSION in ${join(home, 'release')}`, { where: '--jdk', hint: 'pass --jdk-version <version>' });
  return m[1];
}
