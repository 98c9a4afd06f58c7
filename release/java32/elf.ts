/**
 * A small ELF reader: just what the runtime assembly needs to compute a NEEDED closure and to check
 * patches (class, machine, type, PT_INTERP, DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME).
 * Sources: the System V gABI (ELF header, program headers, dynamic section) and glibc's elf.h.
 * Reads only the ELF header, the program headers, the dynamic segment and its string table.
 */
import { open } from 'node:fs/promises';

export interface ElfInfo {
  /** 32 or 64. */
  bits: 32 | 64;
  littleEndian: boolean;
  /** e_machine: 3 = EM_386, 62 = EM_X86_64, 183 = EM_AARCH64. */
  machine: number;
  /** e_type: 2 = ET_EXEC, 3 = ET_DYN. */
  type: number;
  /** PT_INTERP: the program interpreter, when the file is a dynamically linked executable. */
  interpreter?: string;
  needed: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
}

export const EM_386 = 3;
export const EM_X86_64 = 62;

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
// Program header and dynamic section tags (System V gABI), shared with the in-place patcher.
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const DT_NULL = 0;
export const DT_NEEDED = 1;
export const DT_STRTAB = 5;
export const DT_STRSZ = 10;
export const DT_SONAME = 14;
export const DT_RPATH = 15;
export const DT_RUNPATH = 29;

/** True when the first bytes are the ELF magic. */
export function isElfMagic(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(ELF_MAGIC);
}

/** Read the ELF facts of a file; returns undefined when the file is not ELF. Throws on a truncated/corrupt ELF. */
export async function readElf(file: string): Promise<ElfInfo | undefined> {
  const fh = await open(file, 'r');
  try {
    const read = async (offset: number | bigint, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, Number(offset));
      if (bytesRead < length) throw new Error(`${file}: truncated ELF (wanted ${length} bytes at ${offset})`);
      return buf;
    };
    const ident = Buffer.alloc(64);
    const { bytesRead } = await fh.read(ident, 0, 64, 0);
    if (bytesRead < 52 || !isElfMagic(ident)) return undefined;
    const bits = ident[4] === 2 ? 64 : ident[4] === 1 ? 32 : undefined;
    if (!bits) throw new Error(`${file}: unknown ELF class ${ident[4]}`);
    const le = ident[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => (le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const word = (b: Buffer, o: number): bigint => (bits === 64 ? u64(b, o) : BigInt(u32(b, o)));
    const sword = (b: Buffer, o: number): bigint =>
      bits === 64 ? (le ? b.readBigInt64LE(o) : b.readBigInt64BE(o)) : BigInt(le ? b.readInt32LE(o) : b.readInt32BE(o));

    const type = u16(ident, 16);
    const machine = u16(ident, 18);
    const phoff = bits === 64 ? u64(ident, 32) : BigInt(u32(ident, 28));
    const phentsize = u16(ident, bits === 64 ? 54 : 42);
    const phnum = u16(ident, bits === 64 ? 56 : 44);
    const info: ElfInfo = { bits, littleEndian: le, machine, type, needed: [] };
    if (phnum === 0) return info;
    const ph = await read(phoff, phentsize * phnum);

    interface Seg { type: number; offset: bigint; vaddr: bigint; filesz: bigint }
    const segs: Seg[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (bits === 64) {
        segs.push({ type: u32(ph, o), offset: u64(ph, o + 8), vaddr: u64(ph, o + 16), filesz: u64(ph, o + 32) });
      } else {
        segs.push({ type: u32(ph, o), offset: BigInt(u32(ph, o + 4)), vaddr: BigInt(u32(ph, o + 8)), filesz: BigInt(u32(ph, o + 16)) });
      }
    }
    const interp = segs.find((s) => s.type === PT_INTERP);
    if (interp) {
      const raw = await read(interp.offset, Number(interp.filesz));
      const nul = raw.indexOf(0);
      info.interpreter = raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1');
    }
    const dyn = segs.find((s) => s.type === PT_DYNAMIC);
    if (!dyn) return info;
    const dynBuf = await read(dyn.offset, Number(dyn.filesz));
    const entSize = bits === 64 ? 16 : 8;
    const entries: { tag: bigint; val: bigint }[] = [];
    for (let o = 0; o + entSize <= dynBuf.length; o += entSize) {
      const tag = sword(dynBuf, o);
      if (tag === BigInt(DT_NULL)) break;
      entries.push({ tag, val: word(dynBuf, o + entSize / 2) });
    }
    const strtabAddr = entries.find((e) => e.tag === BigInt(DT_STRTAB))?.val;
    const strsz = entries.find((e) => e.tag === BigInt(DT_STRSZ))?.val;
    if (strtabAddr === undefined || strsz === undefined) return info;
    // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD segment holding it.
    const load = segs.find((s) => s.type === PT_LOAD && strtabAddr >= s.vaddr && strtabAddr < s.vaddr + s.filesz);
    if (!load) throw new Error(`${file}: DT_STRTAB address 0x${strtabAddr.toString(16)} is outside every PT_LOAD segment`);
    const strtab = await read(load.offset + (strtabAddr - load.vaddr), Number(strsz));
    const str = (off: bigint): string => {
      const start = Number(off);
      if (start >= strtab.length) throw new Error(`${file}: dynamic string offset ${start} beyond DT_STRSZ`);
      const end = strtab.indexOf(0, start);
      return strtab.subarray(start, end < 0 ? strtab.length : end).toString('latin1');
    };
    for (const e of entries) {
      switch (Number(e.tag)) {
        case DT_NEEDED: info.needed.push(str(e.val)); break;
        case DT_SONAME: info.soname = str(e.val); break;
        case DT_RPATH: info.rpath = str(e.val); break;
        case DT_RUNPATH: info.runpath = str(e.val); break;
        default: break;
      }
    }
    return info;
  } finally {
    await fh.close();
  }
}

/** Human name of an e_machine value (for messages). */
export function machineName(machine: number): string {
  return machine === EM_386 ? 'i386' : machine === EM_X86_64 ? 'x86-64' : machine === 183 ? 'aarch64' : `machine ${machine}`;
}
