/**
 * ELF patches of the staged runtime. Launchers, `lib/{server,client}/libjvm.so` and `libnss_dns`
 * are patched with `patchelf` (Debian package, run on the staged copies only); the loader is patched
 * natively (patch-loader.ts). Every patch is read back with the project's own ELF reader.
 */
import { execa } from 'execa';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { GridforgeError } from '../../base/errors.ts';
import { readElf } from './elf.ts';
import { LOADER_STRING_PATCHES, patchInlinedLibraryPathCompare, replaceAllSameLength, setRpathInPlace } from './patch-loader.ts';

export interface PatchRecord {
  file: string;
  interpreter?: string;
  rpath?: string;
}

async function patchelf(args: string[]): Promise<void> {
  try {
    await execa('patchelf', args);
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new GridforgeError('patchelf is not installed', { hint: 'apt-get install patchelf (scripts/setup.sh installs it)' });
    throw new GridforgeError(`patchelf ${args.join(' ')} failed: ${e.stderr?.trim() || String(err)}`);
  }
}

/** Join rpath entries, dropping duplicates and empties. */
export function joinRpath(...parts: (string | undefined)[]): string {
  const seen = new Set<string>();
  for (const p of parts) for (const e of (p ?? '').split(':')) if (e) seen.add(e);
  return [...seen].join(':');
}

/**
 * Set interpreter and/or DT_RPATH (not RUNPATH: DT_RPATH is searched before LD_LIBRARY_PATH and
 * applies to every library the object loads) and verify by reading the file back.
 */
export async function patchObject(file: string, change: { interpreter?: string; rpath?: string }): Promise<PatchRecord> {
  const args: string[] = [];
  if (change.interpreter) args.push('--set-interpreter', change.interpreter);
  if (change.rpath) args.push('--force-rpath', '--set-rpath', change.rpath);
  if (!args.length) return { file };
  await patchelf([...args, file]);
  const info = await readElf(file);
  if (change.interpreter && info?.interpreter !== change.interpreter) {
    throw new GridforgeError(`patched ${file} but its interpreter reads back as ${info?.interpreter}`);
  }
  if (change.rpath && (info?.rpath !== change.rpath || info.runpath)) {
    throw new GridforgeError(`patched ${file} but its RPATH reads back as ${info?.rpath} (RUNPATH ${info?.runpath})`);
  }
  return { file, ...change };
}

export interface LoaderReport {
  strings: Record<string, number>;
  inlinedCompares: number;
  /** DT_RPATH of the loader; absent when this glibc refuses a loader with one (see below). */
  rpath?: string;
  rpathNote?: string;
}

/** Run `loader --version`; true when it starts (needs a host that executes i386 binaries). */
async function loaderStarts(loader: string): Promise<boolean> {
  const r = await execa(loader, ['--version'], { reject: false, timeout: 10_000 });
  return r.exitCode === 0 && /ld\.so|GLIBC|GNU C Library/i.test(r.stdout);
}

/**
 * Patch the loader in place. The LD_LIBRARY_PATH / cache / preload patches always apply. An RPATH is
 * tried too, but glibc >= 2.26 or so asserts in its bootstrap (`elf_get_dynamic_info`:
 * `info[DT_RPATH] == NULL`) that the loader has none, so the RPATH is kept only when the patched
 * loader still starts; otherwise the report says why it was left out.
 */
export async function patchBundledLoader(loader: string, rpath: string): Promise<LoaderReport> {
  const buf = await readFile(loader);
  const strings: Record<string, number> = {};
  for (const [from, to] of LOADER_STRING_PATCHES) strings[from.includes('\0') ? 'system search directories' : from] = replaceAllSameLength(buf, from, to);
  const inlinedCompares = patchInlinedLibraryPathCompare(buf, loader);
  if (!strings.LD_LIBRARY_PATH && !inlinedCompares) {
    throw new GridforgeError(`${loader}: neither the string LD_LIBRARY_PATH nor an inlined compare of it was found; is this glibc's ld.so?`);
  }
  await writeFile(loader, buf);
  const report: LoaderReport = { strings, inlinedCompares };
  if (!(await loaderStarts(loader))) {
    report.rpathNote = 'not set: this host cannot run the i386 loader to check that it accepts an RPATH';
    return report;
  }
  const withRpath = Buffer.from(buf);
  try {
    setRpathInPlace(withRpath, rpath, loader);
  } catch (err) {
    report.rpathNote = `not set: ${(err as Error).message}`;
    return report;
  }
  const trial = `${loader}.rpath-trial`;
  await writeFile(trial, withRpath, { mode: 0o755 });
  try {
    if (await loaderStarts(trial)) {
      await copyFile(trial, loader);
      report.rpath = rpath;
    } else {
      report.rpathNote = 'not set: this glibc refuses a loader with DT_RPATH (bootstrap assertion info[DT_RPATH] == NULL); the launchers\' RPATH and the disabled LD_LIBRARY_PATH cover it';
    }
  } finally {
    await rm(trial, { force: true });
  }
  return report;
}

/**
 * Prove that `loader` ignores LD_LIBRARY_PATH: run it on `probe` (an unpatched i386 executable)
 * with LD_LIBRARY_PATH pointing at a marker directory and LD_DEBUG=libs; the marker must never show
 * up in the search. Returns undefined when the host cannot run i386 code.
 */
export async function loaderIgnoresLibraryPath(loader: string, probe: string): Promise<boolean | undefined> {
  if (!(await loaderStarts(loader).catch(() => false))) return undefined;
  const marker = `/gridforge-ld-library-path-probe-${process.pid}`;
  const r = await execa(loader, [probe, '-version'], {
    reject: false,
    timeout: 20_000,
    env: { LD_LIBRARY_PATH: marker, LD_DEBUG: 'libs' },
    extendEnv: false,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  if (!/search|find library/.test(out)) return undefined;
  return !out.includes(marker);
}
