// What the probe suites share: recorded samples, a job image made from this host's own shell and C
// library (a real image bubblewrap can run), the ISA marker of that libc raised to a given level
// (an "EL9" image), fake proc roots around a recorded /proc/cpuinfo, and temporary directories.
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SAMPLES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'samples');
export const CPUINFO = (name: string) => path.join(SAMPLES, 'cpuinfo', name);
export const OS_RELEASE = (name: string) => path.join(SAMPLES, 'os-release', name);

export function tempDir(prefix = 'gf-probes-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The shared libraries /bin/sh loads, from ldd (path as named, path resolved). */
async function shLibraries(): Promise<string[]> {
  const r = await execa('ldd', ['/bin/sh']);
  return r.stdout.split('\n').map((l) => /(\/\S+)/.exec(l.includes('=>') ? l.split('=>')[1] : l)?.[1]).filter((x): x is string => !!x);
}

const GNU_PROPERTY_X86_ISA_1_NEEDED = Buffer.from([0x02, 0x80, 0x00, 0xc0, 0x04, 0x00, 0x00, 0x00]);

/** A copy of an ELF file whose x86 ISA-needed marker says `level` (1 = baseline .. 4 = v4). */
export function withIsaLevel(elf: Buffer, level: number): Buffer {
  const at = elf.indexOf(GNU_PROPERTY_X86_ISA_1_NEEDED);
  if (at < 0) throw new Error('no GNU_PROPERTY_X86_ISA_1_NEEDED marker in this ELF file (binutils >= 2.35 writes one)');
  const out = Buffer.from(elf);
  out.writeUInt32LE((1 << level) - 1, at + 8);
  return out;
}

export interface ImageSpec {
  workdir?: boolean;
  cvmfs?: boolean;
  osRelease?: string;
  /** Raise the libc's ISA marker to this level. */
  isaLevel?: number;
}

/** A job image directory: /bin/sh and its libraries from this host, os-release, bind points. */
export async function makeImage(dir: string, spec: ImageSpec = {}): Promise<string> {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.copyFileSync(fs.realpathSync('/bin/sh'), path.join(dir, 'bin/sh'));
  fs.chmodSync(path.join(dir, 'bin/sh'), 0o755);
  for (const lib of await shLibraries()) {
    const dest = path.join(dir, lib);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    let data: Buffer = fs.readFileSync(fs.realpathSync(lib));
    if (spec.isaLevel && /libc\.so/.test(lib)) data = withIsaLevel(data, spec.isaLevel);
    fs.writeFileSync(dest, data, { mode: 0o755 });
  }
  for (const d of ['etc', 'proc', 'dev', 'tmp', ...(spec.workdir === false ? [] : ['workdir']), ...(spec.cvmfs === false ? [] : ['cvmfs'])]) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync(spec.osRelease ?? OS_RELEASE('debian-12'), path.join(dir, 'etc/os-release'));
  return dir;
}

/** A proc root with a recorded cpuinfo and everything else linked to this host's /proc. */
export function fakeProc(dir: string, cpuinfo: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(cpuinfo, path.join(dir, 'cpuinfo'));
  for (const e of ['meminfo', 'sys', 'mounts', 'filesystems', 'driver']) if (fs.existsSync(`/proc/${e}`)) fs.symlinkSync(`/proc/${e}`, path.join(dir, e));
  return dir;
}
