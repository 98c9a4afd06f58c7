/**
 * Assemble the 32-bit Java runtime in a staging directory, ready to publish at
 * `<mount-prefix>/java/JDKs/i686/jdk-<version>/`:
 *
 *   read (sources.ts) -> copy with /etc links resolved (copy-jdk.ts) -> library closure (closure.ts)
 *   -> bundle libraries into `bundled-lib/` -> patch (patch.ts, patch-loader.ts) -> verify
 *
 * The interpreter and RPATHs are absolute paths under the mount prefix, so the runtime runs only
 * where it is mounted (a cvmfs client at /cvmfs/<repo>, or a checkout at the prefix given here).
 */
import { chmod, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { computeClosure, indexLibraries, jdkObjects } from './closure.ts';
import { copyJdk, type CopyReport } from './copy-jdk.ts';
import { EM_386 } from './elf.ts';
import { joinRpath, loaderIgnoresLibraryPath, patchBundledLoader, patchObject, type LoaderReport, type PatchRecord } from './patch.ts';
import { findJdkHome, unpackSource } from './sources.ts';

export const JDK_PARENT = 'java/JDKs/i686';
export const BUNDLED_LIB_DIR = 'bundled-lib';
export const LOADER = 'ld-linux.so.2';

export interface AssembleOptions {
  /** Directory, .deb or tarball holding the i386 JDK. */
  jdk: string;
  /** Directories, .debs or tarballs holding the i386 libraries (libc6, zlib1g, libstdc++6, libgcc-s1 ...). */
  libs: string[];
  /** Where the repository root is mounted on worker nodes, e.g. /cvmfs/alice.cern.ch. */
  mountPrefix: string;
  /** Scratch directory (created inside, removed by the caller). */
  workDir: string;
  jdkVersion?: string;
  cacerts?: string;
  onProgress?: (msg: string) => void;
}

export interface AssembledRuntime {
  /** Staged tree: the future `java/JDKs/i686/jdk-<version>`. */
  dir: string;
  version: string;
  /** `jdk-<version>` */
  name: string;
  /** Path inside the repository. */
  repoPath: string;
  /** Absolute path where it runs: <mount-prefix>/java/JDKs/i686/jdk-<version>. */
  mountDir: string;
  interpreter: string;
  libDir: string;
  libs: string[];
  unresolved: { name: string; neededBy: string[]; core: boolean }[];
  links: CopyReport;
  patched: PatchRecord[];
  loader: LoaderReport;
  /** true: proven by running the loader; undefined: the host cannot run i386 code. */
  ldLibraryPathIgnored?: boolean;
}

export function validateMountPrefix(prefix: string): string {
  if (!prefix.startsWith('/') || prefix.includes('..') || /\s|:/.test(prefix)) {
    throw new UsageError(`mount prefix "${prefix}" must be an absolute path without "..", ":" or spaces`, {
      where: '--mount-prefix',
      hint: 'use the path where the repository is mounted on worker nodes, e.g. /cvmfs/alice.cern.ch',
    });
  }
  return prefix.replace(/\/+$/, '');
}

export async function assembleJava32(opts: AssembleOptions): Promise<AssembledRuntime> {
  const say = opts.onProgress ?? (() => {});
  const prefix = validateMountPrefix(opts.mountPrefix);
  if (!opts.libs.length) throw new UsageError('no library source given', { where: '--libs', hint: 'pass the i386 libc6/zlib1g/libstdc++6/libgcc-s1 packages (scripts/fetch-i386.sh)' });
  await mkdir(opts.workDir, { recursive: true });
  const scratch = await mkdtemp(join(opts.workDir, 'java32-'));

  say(`java32: reading the JDK from ${opts.jdk}`);
  const jdkRoot = await unpackSource(opts.jdk, scratch, undefined, '--jdk');
  const jdk = await findJdkHome(jdkRoot);
  const version = opts.jdkVersion ?? jdk.version;
  if (!/^[0-9][0-9A-Za-z.+_-]*$/.test(version)) throw new UsageError(`JDK version "${version}" is not a plain version string`, { where: '--jdk-version' });
  // .debs share one root so links between packages (lib/ld-linux.so.2 -> i386-linux-gnu/...) resolve.
  const debRoot = join(scratch, 'libs-root');
  const libRoots: string[] = [];
  for (const l of opts.libs) {
    const r = await unpackSource(l, scratch, /\.deb$/.test(l) ? debRoot : undefined, '--libs');
    if (!libRoots.includes(r)) libRoots.push(r);
  }

  const name = `jdk-${version}`;
  const repoPath = `${JDK_PARENT}/${name}`;
  const mountDir = `${prefix}/${repoPath}`;
  const libDir = `${mountDir}/${BUNDLED_LIB_DIR}`;
  const interpreter = `${libDir}/${LOADER}`;
  const dir = join(scratch, name);

  say(`java32: copying ${jdk.home} (JDK ${version}), resolving links into /etc`);
  const links = await copyJdk(jdk.home, dir, { roots: [jdk.root, ...libRoots], cacerts: opts.cacerts, hostCacerts: '/etc/ssl/certs/java/cacerts' });

  say('java32: computing the ELF NEEDED closure');
  const objects = await jdkObjects(dir);
  const index = await indexLibraries([...libRoots, jdk.root], EM_386);
  const closure = computeClosure(objects, index, EM_386);
  const core = closure.unresolved.filter((u) => u.core);
  if (core.length) {
    throw new UsageError(
      `libraries the JVM needs are in none of the given library sources: ${core.map((u) => `${u.name} (needed by ${u.neededBy.join(', ')})`).join('; ')}`,
      { where: '--libs', hint: 'add the i386 packages that ship them (libc6, zlib1g, libstdc++6, libgcc-s1)' },
    );
  }
  if (!closure.libs.has(LOADER)) throw new UsageError(`${LOADER} is in none of the library sources`, { where: '--libs', hint: 'add libc6:i386' });

  await mkdir(join(dir, BUNDLED_LIB_DIR), { mode: 0o755 });
  for (const [libName, lib] of [...closure.libs.entries()].sort()) {
    const to = join(dir, BUNDLED_LIB_DIR, libName);
    await copyFile(lib.file, to);
    await chmod(to, 0o755);
  }

  say(`java32: patching interpreter -> ${interpreter}`);
  const patched: PatchRecord[] = [];
  for (const o of objects) {
    const file = join(dir, o.rel);
    if (o.info.interpreter) {
      patched.push(await patchObject(file, { interpreter, rpath: joinRpath(libDir, o.info.rpath ?? o.info.runpath) }));
    } else if (/^lib\/(server|client)\/libjvm\.so$/.test(o.rel)) {
      patched.push(await patchObject(file, { rpath: joinRpath(libDir, o.info.rpath ?? o.info.runpath) }));
    }
  }
  for (const nss of ['libnss_dns.so.2']) {
    if (closure.libs.has(nss)) patched.push(await patchObject(join(dir, BUNDLED_LIB_DIR, nss), { rpath: libDir }));
  }
  const loaderFile = join(dir, BUNDLED_LIB_DIR, LOADER);
  const loader = await patchBundledLoader(loaderFile, libDir);
  patched.push({ file: loaderFile, rpath: loader.rpath });

  // Prove the loader ignores LD_LIBRARY_PATH, using the unpatched launcher as probe.
  const ldLibraryPathIgnored = await loaderIgnoresLibraryPath(loaderFile, join(jdk.home, 'bin', 'java'));
  if (ldLibraryPathIgnored === false) {
    throw new UsageError('the patched loader still honours LD_LIBRARY_PATH', { where: `--libs (${LOADER})`, hint: 'this glibc build matches the variable in a way gridforge does not know; report it with the libc6 version' });
  }

  return {
    dir,
    version,
    name,
    repoPath,
    mountDir,
    interpreter,
    libDir,
    libs: [...closure.libs.keys()].sort(),
    unresolved: closure.unresolved,
    links,
    patched: patched.map((p) => ({ ...p, file: posix.relative(dir, p.file) })),
    loader,
    ldLibraryPathIgnored,
  };
}

/** Remove the scratch directory of an assembled runtime (its parent). */
export async function discardAssembly(rt: AssembledRuntime): Promise<void> {
  await rm(join(rt.dir, '..'), { recursive: true, force: true });
}
