/**
 * Native, size-preserving patches of the bundled dynamic loader (`ld-linux.so.2`).
 *
 * patchelf cannot add an RPATH to glibc's ld.so: it moves `.dynamic` to a new segment, but ld.so
 * bootstraps itself through the link-time address of `_DYNAMIC` (the old place, which patchelf
 * clobbers), and the patched loader segfaults at once (measured with patchelf 0.14.3 and glibc 2.36).
 * So the loader is patched in place:
 *
 * - RPATH: a spare `DT_NULL` slot of `.dynamic` becomes `DT_RPATH`; the path string goes into the
 *   zero padding right after the read-only segment that holds `.dynstr` (that segment grows into its
 *   own page, nothing moves); `DT_STRSZ` and the `.dynstr` section size grow to cover it so readelf and
 *   patchelf read it back.
 * - `LD_LIBRARY_PATH`: every `LD_LIBRARY_PATH` string is overwritten with a same-length string that
 *   contains `=` (an environment variable *name* never does, so nothing can match it). Current glibc
 *   (2.36 here) no longer looks the variable up by that string: it strips `LD_` and compares the rest
 *   with an inlined `memcmp(name, "LIBRARY_PATH", 12)`, compiled on i386 to `cmpl $"LIBR", (reg)` ...
 *   Those compare immediates are patched too (`LIBR` -> `LIB=`). `verifyLoaderIgnoresLibraryPath` proves
 *   the effect by running the loader.
 * - `/etc/ld.so.cache` and `/etc/ld.so.preload` point below `/dev/null` (never a directory), so the
 *   host's cache (which may list host i386 libraries) and preload list are never read; the
 *   compiled-in system directories (`/lib/i386-linux-gnu/`, `/usr/lib/` ...) are replaced by
 *   same-length paths that hold no libraries.
 */
import { DT_NULL, DT_RPATH, DT_RUNPATH, DT_STRSZ, DT_STRTAB, PT_DYNAMIC, PT_LOAD } from './elf.ts';

const SHT_STRTAB = 3;

/** Replacement strings: same length as the original, and impossible as a variable name / a path. */
export const LOADER_STRING_PATCHES: ReadonlyArray<readonly [string, string]> = [
  ['LD_LIBRARY_PATH', 'GRIDFORGE=NOLLP'],
  ['/etc/ld.so.cache', '/dev/null/ldcach'],
  ['/etc/ld.so.preload', '/dev/null/preload.'],
  // The compiled-in system search directories (i386 multiarch glibc): each entry keeps its length
  // (glibc stores a length table next to them) and names a directory that cannot exist or holds no
  // libraries, so a library missing from the bundle is never taken from the host.
  [
    '/lib/i386-linux-gnu/\0/usr/lib/i386-linux-gnu/\0/lib/\0/usr/lib/\0',
    '/dev/null/nohostlib/\0/dev/null/nohostlib/usr/\0/dev/\0/dev/null\0',
  ],
];

interface Header {
  bits: 32 | 64;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

function header(buf: Buffer, file: string): Header {
  if (buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not an ELF file`);
  if (buf[5] !== 1) throw new Error(`${file}: big-endian ELF is not supported by the loader patcher`);
  const bits = buf[4] === 2 ? 64 : 32;
  if (bits === 64) {
    return {
      bits, phoff: Number(buf.readBigUInt64LE(32)), shoff: Number(buf.readBigUInt64LE(40)),
      phentsize: buf.readUInt16LE(54), phnum: buf.readUInt16LE(56), shentsize: buf.readUInt16LE(58),
      shnum: buf.readUInt16LE(60), shstrndx: buf.readUInt16LE(62),
    };
  }
  return {
    bits, phoff: buf.readUInt32LE(28), shoff: buf.readUInt32LE(32), phentsize: buf.readUInt16LE(42),
    phnum: buf.readUInt16LE(44), shentsize: buf.readUInt16LE(46), shnum: buf.readUInt16LE(48), shstrndx: buf.readUInt16LE(50),
  };
}

interface Phdr { index: number; at: number; type: number; offset: number; vaddr: number; filesz: number; memsz: number; align: number }

function phdrs(buf: Buffer, h: Header): Phdr[] {
  const out: Phdr[] = [];
  for (let i = 0; i < h.phnum; i++) {
    const at = h.phoff + i * h.phentsize;
    if (h.bits === 64) {
      out.push({ index: i, at, type: buf.readUInt32LE(at), offset: Number(buf.readBigUInt64LE(at + 8)), vaddr: Number(buf.readBigUInt64LE(at + 16)),
        filesz: Number(buf.readBigUInt64LE(at + 32)), memsz: Number(buf.readBigUInt64LE(at + 40)), align: Number(buf.readBigUInt64LE(at + 48)) });
    } else {
      out.push({ index: i, at, type: buf.readUInt32LE(at), offset: buf.readUInt32LE(at + 4), vaddr: buf.readUInt32LE(at + 8),
        filesz: buf.readUInt32LE(at + 16), memsz: buf.readUInt32LE(at + 20), align: buf.readUInt32LE(at + 28) });
    }
  }
  return out;
}

/**
 * Set DT_RPATH of a shared object in place (see the file comment). Throws when the object has no
 * spare dynamic slot or no padding to hold the string; the buffer is modified only on success.
 */
export function setRpathInPlace(buf: Buffer, rpath: string, file = 'ELF'): void {
  const h = header(buf, file);
  const ph = phdrs(buf, h);
  const dyn = ph.find((p) => p.type === PT_DYNAMIC);
  if (!dyn) throw new Error(`${file}: no PT_DYNAMIC segment`);
  const ent = h.bits === 64 ? 16 : 8;
  const rdTag = (o: number) => (h.bits === 64 ? Number(buf.readBigInt64LE(o)) : buf.readInt32LE(o));
  const rdVal = (o: number) => (h.bits === 64 ? Number(buf.readBigUInt64LE(o + 8)) : buf.readUInt32LE(o + 4));
  const wrTag = (o: number, v: number) => (h.bits === 64 ? buf.writeBigInt64LE(BigInt(v), o) : buf.writeInt32LE(v, o));
  const wrVal = (o: number, v: number) => (h.bits === 64 ? buf.writeBigUInt64LE(BigInt(v), o + 8) : buf.writeUInt32LE(v, o + 4));

  const slots = Math.floor(dyn.filesz / ent);
  let nullAt = -1;
  let rpathAt = -1;
  let strtab = -1;
  let strszAt = -1;
  for (let i = 0; i < slots; i++) {
    const o = dyn.offset + i * ent;
    const tag = rdTag(o);
    if (tag === DT_NULL) { nullAt = i; break; }
    if (tag === DT_RPATH) rpathAt = o;
    if (tag === DT_RUNPATH) throw new Error(`${file}: has DT_RUNPATH; refusing to add DT_RPATH next to it`);
    if (tag === DT_STRTAB) strtab = rdVal(o);
    if (tag === DT_STRSZ) strszAt = o;
  }
  if (strtab < 0 || strszAt < 0) throw new Error(`${file}: no DT_STRTAB/DT_STRSZ`);
  if (rpathAt < 0 && (nullAt < 0 || nullAt + 1 >= slots)) {
    throw new Error(`${file}: no spare slot in .dynamic for DT_RPATH (${slots} slots, terminator at ${nullAt})`);
  }
  // The read-only segment that maps the string table; the string goes into its trailing page padding.
  const seg = ph.find((p) => p.type === PT_LOAD && strtab >= p.vaddr && strtab < p.vaddr + p.filesz);
  if (!seg) throw new Error(`${file}: DT_STRTAB is outside every PT_LOAD segment`);
  if (seg.memsz !== seg.filesz) throw new Error(`${file}: the segment holding .dynstr has bss; cannot grow it`);
  const bytes = Buffer.from(`${rpath}\0`, 'latin1');
  const at = seg.offset + seg.filesz;
  const page = 0x1000;
  const pageEnd = Math.ceil((seg.offset + seg.filesz) / page) * page;
  const nextFile = Math.min(...ph.filter((p) => p.type === PT_LOAD && p.offset >= at).map((p) => p.offset), buf.length);
  const nextVaddr = Math.min(...ph.filter((p) => p.type === PT_LOAD && p.vaddr > seg.vaddr).map((p) => p.vaddr), Number.MAX_SAFE_INTEGER);
  const limit = Math.min(pageEnd, nextFile, seg.offset + (nextVaddr - seg.vaddr));
  if (at + bytes.length > limit) throw new Error(`${file}: only ${limit - at} bytes of padding after .dynstr's segment; rpath needs ${bytes.length}`);
  if (buf.subarray(at, at + bytes.length).some((b) => b !== 0)) throw new Error(`${file}: padding after .dynstr's segment is not empty`);

  bytes.copy(buf, at);
  const grown = seg.filesz + bytes.length;
  if (h.bits === 64) {
    buf.writeBigUInt64LE(BigInt(grown), seg.at + 32);
    buf.writeBigUInt64LE(BigInt(grown), seg.at + 40);
  } else {
    buf.writeUInt32LE(grown, seg.at + 16);
    buf.writeUInt32LE(grown, seg.at + 20);
  }
  const strOffset = seg.vaddr + seg.filesz - strtab;
  const newStrsz = strOffset + bytes.length;
  if (rpathAt >= 0) {
    wrVal(rpathAt, strOffset);
  } else {
    const o = dyn.offset + nullAt * ent;
    wrTag(o, DT_RPATH);
    wrVal(o, strOffset);
  }
  if (rdVal(strszAt) < newStrsz) wrVal(strszAt, newStrsz);

  // Section header of .dynstr (the string table readelf and patchelf read): widen it the same way.
  if (h.shoff > 0 && h.shnum > 0) {
    for (let i = 0; i < h.shnum; i++) {
      const o = h.shoff + i * h.shentsize;
      const type = buf.readUInt32LE(o + 4);
      const addr = h.bits === 64 ? Number(buf.readBigUInt64LE(o + 16)) : buf.readUInt32LE(o + 12);
      if (type !== SHT_STRTAB || addr !== strtab) continue;
      if (h.bits === 64) buf.writeBigUInt64LE(BigInt(Math.max(Number(buf.readBigUInt64LE(o + 32)), newStrsz)), o + 32);
      else buf.writeUInt32LE(Math.max(buf.readUInt32LE(o + 20), newStrsz), o + 20);
    }
  }
}

/** Overwrite every occurrence of `from` with `to` (same length). Returns the number of occurrences. */
export function replaceAllSameLength(buf: Buffer, from: string, to: string): number {
  if (from.length !== to.length) throw new Error(`replacement for ${from} must have the same length`);
  const needle = Buffer.from(from, 'latin1');
  const repl = Buffer.from(to, 'latin1');
  let count = 0;
  for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + needle.length)) {
    repl.copy(buf, i);
    count++;
  }
  return count;
}

/**
 * Patch i386 `cmp $imm32, r/m32` instructions (opcode 81 /7) whose immediate is `LIBR`, the first
 * word of glibc's inlined `memcmp(name, "LIBRARY_PATH", 12)`, to `LIB=`. Only executable segments
 * are scanned. Returns the number of instructions patched.
 */
export function patchInlinedLibraryPathCompare(buf: Buffer, file = 'ELF'): number {
  const h = header(buf, file);
  const PF_X = 1;
  let count = 0;
  const needle = Buffer.from('LIBR', 'latin1');
  for (let i = 0; i < h.phnum; i++) {
    const at = h.phoff + i * h.phentsize;
    if (buf.readUInt32LE(at) !== PT_LOAD) continue;
    const flags = h.bits === 64 ? buf.readUInt32LE(at + 4) : buf.readUInt32LE(at + 24);
    if (!(flags & PF_X)) continue;
    const start = h.bits === 64 ? Number(buf.readBigUInt64LE(at + 8)) : buf.readUInt32LE(at + 4);
    const size = h.bits === 64 ? Number(buf.readBigUInt64LE(at + 32)) : buf.readUInt32LE(at + 16);
    const end = start + size;
    for (let p = buf.indexOf(needle, start); p >= 0 && p + 4 <= end; p = buf.indexOf(needle, p + 1)) {
      if (isCmpImm32At(buf, p)) {
        buf.write('=', p + 3, 'latin1');
        count++;
      }
    }
  }
  return count;
}

/** Is `p` the imm32 of an `81 /7` (cmp r/m32, imm32) instruction? Checks the ModRM forms without SIB. */
function isCmpImm32At(buf: Buffer, p: number): boolean {
  const isCmpModrm = (m: number, mod: number) => ((m >> 3) & 7) === 7 && m >> 6 === mod && (m & 7) !== 4;
  // mod 00 (no displacement; rm 101 would be disp32), mod 11 (register), mod 01 (+disp8), mod 10 (+disp32)
  if (p >= 2 && buf[p - 2] === 0x81 && isCmpModrm(buf[p - 1], 0) && (buf[p - 1] & 7) !== 5) return true;
  if (p >= 2 && buf[p - 2] === 0x81 && isCmpModrm(buf[p - 1], 3)) return true;
  if (p >= 3 && buf[p - 3] === 0x81 && isCmpModrm(buf[p - 2], 1)) return true;
  if (p >= 6 && buf[p - 6] === 0x81 && isCmpModrm(buf[p - 5], 2)) return true;
  return false;
}
