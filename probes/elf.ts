/**
 * What an ELF file says about the CPU it needs: its machine (x86_64, aarch64, i386) and, for
 * x86-64, the ISA level in its GNU property note (GNU_PROPERTY_X86_ISA_1_NEEDED, the marker
 * binutils >= 2.35 writes and glibc's ld.so checks before it loads an object: bit 0 baseline,
 * 1 x86-64-v2, 2 x86-64-v3, 3 x86-64-v4; "x86-64 psABI", gitlab.com/x86-psABIs/x86-64-ABI).
 * A glibc built for a level (EL9: x86-64-v2) carries it on libc.so.6 and ld.so.
 */

const PT_NOTE = 4;
const PT_GNU_PROPERTY = 0x6474e553;
const NT_GNU_PROPERTY_TYPE_0 = 5;
const GNU_PROPERTY_X86_ISA_1_NEEDED = 0xc0008002;
const MACHINES: Record<number, string> = { 3: 'i686', 62: 'x86_64', 183: 'aarch64', 40: 'arm', 21: 'ppc64', 22: 's390x', 243: 'riscv64' };

export interface ElfInfo {
  machine: string;
  /** Highest x86-64 level in the ISA-needed marker (1 = baseline), undefined when there is none. */
  x86IsaLevel?: number;
}

/** Parse the header and notes of an ELF file; undefined when it is not ELF. */
export function elfInfo(b: Buffer): ElfInfo | undefined {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = b[4] === 2;
  const le = b[5] === 1;
  const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const machineId = u16(18);
  const info: ElfInfo = { machine: MACHINES[machineId] ?? `elf-machine-${machineId}` };
  const phoff = is64 ? u64(32) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + phentsize > b.length) break;
    const type = u32(ph);
    if (type !== PT_NOTE && type !== PT_GNU_PROPERTY) continue;
    const off = is64 ? u64(ph + 8) : u32(ph + 4);
    const size = is64 ? u64(ph + 32) : u32(ph + 16);
    const align = Math.max(4, is64 ? u64(ph + 48) : u32(ph + 28));
    const level = isaLevelInNotes(b, off, Math.min(off + size, b.length), align, is64, u32);
    if (level !== undefined) info.x86IsaLevel = Math.max(info.x86IsaLevel ?? 0, level);
  }
  return info;
}

const pad = (n: number, a: number) => (n + a - 1) & ~(a - 1);

function isaLevelInNotes(b: Buffer, start: number, end: number, align: number, is64: boolean, u32: (o: number) => number): number | undefined {
  let level: number | undefined;
  for (let p = start; p + 12 <= end; ) {
    const namesz = u32(p);
    const descsz = u32(p + 4);
    const type = u32(p + 8);
    const name = b.subarray(p + 12, p + 12 + namesz).toString('latin1');
    const desc = p + pad(12 + namesz, align); // name and desc each start aligned (8 for GNU property notes)
    if (type === NT_GNU_PROPERTY_TYPE_0 && name === 'GNU\0') {
      for (let q = desc; q + 8 <= desc + descsz; ) {
        const prType = u32(q);
        const datasz = u32(q + 4);
        if (prType === GNU_PROPERTY_X86_ISA_1_NEEDED && datasz >= 4) {
          const bits = u32(q + 8);
          for (let bit = 3; bit >= 0; bit--) {
            if (bits & (1 << bit)) {
              level = Math.max(level ?? 0, bit + 1);
              break;
            }
          }
        }
        q += 8 + pad(datasz, is64 ? 8 : 4);
      }
    }
    p = desc + pad(descsz, align);
  }
  return level;
}
