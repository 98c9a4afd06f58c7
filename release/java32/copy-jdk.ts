/**
 * Copy the JDK home into the staging tree, turning the symlinks distribution packages point into
 * `/etc` (jvm.cfg, conf/, security/, cacerts) into real files. Copied as links they would dangle on a
 * worker node: the JVM then silently falls back to server-only and rejects `-client` (jvm.cfg), and
 * loses its security configuration.
 *
 * An absolute link target is looked up inside every given root (the unpacked packages), following
 * links inside that root; `lib/security/cacerts` may fall back to a given file or to the host's
 * keystore (it is a platform-independent Java keystore). Relative links that stay inside the JDK are
 * kept; relative links leaving the JDK (Debian's `docs`) are dropped and reported.
 */
import { chmod, copyFile, lstat, mkdir, readdir, readlink, realpath, stat, symlink } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import { UsageError } from '../../base/errors.ts';

export interface CopyReport {
  /** Links into /etc (or elsewhere outside the JDK) replaced by the real file: jdk path -> source. */
  resolved: Record<string, string>;
  /** Links that could not be resolved and were left out. */
  dropped: string[];
  files: number;
}

export interface CopyOptions {
  /** Roots to resolve absolute link targets in (the unpacked packages). */
  roots: string[];
  /** Explicit cacerts keystore; otherwise looked up in the roots, then the host's. */
  cacerts?: string;
  hostCacerts?: string;
}

/** Resolve an absolute path inside `root` (absolute link targets are root-relative); undefined if absent. */
export async function resolveInRoot(root: string, absPath: string, depth = 0): Promise<string | undefined> {
  if (depth > 40) return undefined;
  const parts = absPath.split('/').filter((p) => p && p !== '.');
  let cur = '/';
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '..') {
      cur = posix.dirname(cur);
      continue;
    }
    const next = posix.join(cur, parts[i]);
    let st;
    try {
      st = await lstat(join(root, next));
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(join(root, next));
      const base = target.startsWith('/') ? target : posix.join(cur, target);
      return resolveInRoot(root, posix.join(base, ...parts.slice(i + 1)), depth + 1);
    }
    cur = next;
  }
  return join(root, cur);
}

const CACERTS_LINK = 'lib/security/cacerts';

/** Copy `home` to `dest` (which must not exist), resolving links as described above. */
export async function copyJdk(home: string, dest: string, opts: CopyOptions): Promise<CopyReport> {
  const report: CopyReport = { resolved: {}, dropped: [], files: 0 };
  const required: string[] = [];

  /** Find an absolute link target inside the package roots (never on the host). */
  const inRoots = async (absolute: string): Promise<string | undefined> => {
    for (const root of opts.roots) {
      const found = await resolveInRoot(root, absolute);
      if (found) return found;
    }
    return undefined;
  };

  // Copy what a link resolved to. Links found inside it are not followed on the host: relative ones
  // are kept, absolute ones are looked up in the package roots again (or left out).
  const copyResolved = async (src: string, to: string, depth = 0): Promise<void> => {
    const st = await lstat(src);
    if (st.isSymbolicLink()) {
      const target = await readlink(src);
      if (!target.startsWith('/')) {
        await symlink(target, to);
        return;
      }
      const found = depth < 20 ? await inRoots(target) : undefined;
      if (found) await copyResolved(found, to, depth + 1);
      else report.dropped.push(`${relative(dest, to)} -> ${target}`);
      return;
    }
    if (st.isDirectory()) {
      await mkdir(to, { recursive: true, mode: st.mode & 0o7777 });
      for (const e of (await readdir(src)).sort()) await copyResolved(join(src, e), join(to, e), depth);
      return;
    }
    if (!st.isFile()) return;
    await copyFile(src, to);
    await chmod(to, st.mode & 0o7777);
    report.files++;
  };

  const walk = async (rel: string): Promise<void> => {
    const src = join(home, rel);
    const to = join(dest, rel);
    const st = await lstat(src);
    if (st.isDirectory()) {
      await mkdir(to, { recursive: true });
      await chmod(to, st.mode & 0o7777);
      for (const e of (await readdir(src)).sort()) await walk(rel ? posix.join(rel, e) : e);
      return;
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(src);
      if (!target.startsWith('/')) {
        const inside = posix.normalize(posix.join(posix.dirname(rel), target));
        if (!inside.startsWith('../') && inside !== '..') {
          await symlink(target, to);
          return;
        }
      }
      // Absolute, or leaving the JDK: find the real thing in the package roots.
      const absolute = target.startsWith('/') ? target : posix.join('/', relative(opts.roots[0] ?? '/', join(dirname(src), target)));
      let found = await inRoots(absolute);
      if (!found && rel === CACERTS_LINK) {
        // The one host file that may be used: a Java keystore (data, platform independent), its
        // links resolved on the host by realpath.
        found = opts.cacerts ?? opts.hostCacerts;
        if (found) {
          try { found = await realpath(found); if (!(await stat(found)).isFile()) found = undefined; } catch { found = undefined; }
        }
      }
      if (!found) {
        report.dropped.push(`${rel} -> ${target}`);
        if (rel === 'lib/jvm.cfg' || rel.startsWith('conf/security/') || rel === 'conf/net.properties') required.push(`${rel} -> ${target}`);
        return;
      }
      report.resolved[rel] = found;
      await copyResolved(found, to);
      return;
    }
    if (st.isFile()) {
      await copyFile(src, to);
      await chmod(to, st.mode & 0o7777);
      report.files++;
    }
    // Devices, fifos, sockets have no place in a JDK: skipped.
  };

  if (opts.cacerts) {
    try { await stat(opts.cacerts); } catch {
      throw new UsageError(`${opts.cacerts} does not exist`, { where: '--cacerts', hint: 'give a Java keystore file (e.g. /etc/ssl/certs/java/cacerts)' });
    }
  }
  await walk('');
  if (required.length) {
    throw new UsageError(`the JDK's configuration links point outside it and were not found in the given packages: ${required.join(', ')}`, {
      where: '--jdk',
      hint: 'pass the whole unpacked package (the .deb itself, or a root that contains its etc/ directory)',
    });
  }
  return report;
}
