/**
 * The library set of the runtime: the ELF `DT_NEEDED` closure of every ELF object of the JDK, plus
 * what glibc loads at run time by name (`libnss_*`, `libresolv`) and their closure, all looked up in
 * the given library roots (unpacked i386 packages), never on the host.
 */
import { lstat, readdir, realpath } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { readElf, machineName, type ElfInfo } from './elf.ts';
import { resolveInRoot } from './copy-jdk.ts';

/** Library directories searched in each root, in this order (multiarch first), then the root itself. */
const LIB_DIRS = ['lib/i386-linux-gnu', 'usr/lib/i386-linux-gnu', 'lib32', 'usr/lib32', 'lib', 'usr/lib', ''];

/** Names glibc opens with dlopen at run time (NSS modules, the resolver). */
export const GLIBC_DLOPEN = [/^libnss_[a-z0-9_]+\.so\.\d+$/, /^libresolv\.so\.\d+$/];

/** JDK objects whose libraries must all resolve: the JVM cannot start without them. */
export const CORE_OBJECTS = [
  /^bin\/[^/]+$/, /^lib\/(jexec|jspawnhelper)$/, /^lib\/(server|client)\/libjvm\.so$/,
  /^lib\/lib(jli|java|zip|nio|net|jimage|verify|extnet|management|prefs)\.so$/,
];

export interface IndexedLib {
  name: string;
  /** The real file (links resolved). */
  file: string;
  info: ElfInfo;
}

/** Index every i386 shared object of the roots by file name (first root / directory wins). */
export async function indexLibraries(roots: string[], machine: number): Promise<Map<string, IndexedLib>> {
  const index = new Map<string, IndexedLib>();
  for (const root of roots) {
    for (const dir of LIB_DIRS) {
      let names: string[];
      try {
        names = (await readdir(join(root, dir))).sort();
      } catch {
        continue;
      }
      for (const name of names) {
        if (index.has(name) || !/\.so(\.|$)/.test(name)) continue;
        const file = await resolveInRoot(root, posix.join('/', dir, name));
        if (!file) continue;
        const st = await lstat(file).catch(() => undefined);
        if (!st?.isFile()) continue;
        const info = await readElf(file).catch(() => undefined);
        if (!info || info.machine !== machine) continue;
        index.set(name, { name, file: await realpath(file), info });
      }
    }
  }
  return index;
}

export interface JdkObject {
  /** Path relative to the JDK home. */
  rel: string;
  info: ElfInfo;
}

/** Every ELF object of a (copied) JDK tree. */
export async function jdkObjects(home: string): Promise<JdkObject[]> {
  const out: JdkObject[] = [];
  const walk = async (rel: string) => {
    for (const e of (await readdir(join(home, rel), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? posix.join(rel, e.name) : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const info = await readElf(join(home, r)).catch(() => undefined);
        if (info) out.push({ rel: r, info });
      }
    }
  };
  await walk('');
  return out;
}

export interface Closure {
  /** Bundled libraries: the name the loader asks for -> the real file to copy. */
  libs: Map<string, IndexedLib>;
  /** Names nobody could provide, with who needs them. */
  unresolved: { name: string; neededBy: string[]; core: boolean }[];
}

/**
 * Compute the closure for the JDK objects. JDK-internal names (libjvm.so, libjava.so ... found
 * through the JDK's own $ORIGIN RPATH) are not bundled.
 */
export function computeClosure(objects: JdkObject[], index: Map<string, IndexedLib>, machine: number): Closure {
  const internal = new Set(objects.map((o) => posix.basename(o.rel)));
  for (const o of objects) if (o.info.soname) internal.add(o.info.soname);
  const libs = new Map<string, IndexedLib>();
  const missing = new Map<string, { neededBy: Set<string>; core: boolean }>();
  const queue: { name: string; by: string; core: boolean }[] = [];
  for (const o of objects) {
    if (o.info.machine !== machine) throw new Error(`${o.rel} is ${machineName(o.info.machine)}, not ${machineName(machine)}`);
    const core = CORE_OBJECTS.some((re) => re.test(o.rel));
    for (const n of o.info.needed) queue.push({ name: n, by: o.rel, core });
  }
  for (const name of index.keys()) {
    if (GLIBC_DLOPEN.some((re) => re.test(name))) queue.push({ name, by: 'glibc (dlopen)', core: false });
  }
  // The loader itself is always bundled: it is the interpreter of every launcher.
  queue.push({ name: 'ld-linux.so.2', by: 'interpreter', core: true });
  while (queue.length) {
    const { name, by, core } = queue.shift()!;
    if (internal.has(name)) continue;
    if (libs.has(name)) continue;
    const lib = index.get(name);
    if (!lib) {
      const m = missing.get(name) ?? { neededBy: new Set<string>(), core: false };
      m.neededBy.add(by);
      m.core ||= core;
      missing.set(name, m);
      continue;
    }
    libs.set(name, lib);
    for (const n of lib.info.needed) queue.push({ name: n, by: name, core });
  }
  return {
    libs,
    unresolved: [...missing.entries()].map(([name, m]) => ({ name, neededBy: [...m.neededBy].sort(), core: m.core })).sort((a, b) => a.name.localeCompare(b.name)),
  };
}
