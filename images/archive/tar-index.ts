/**
 * Index a tar file on disk by seeking from header to header: name -> { offset, size }.
 * Used for docker-save archives, whose members (layers, configs, manifests) are then read in place
 * by offset, so uncompressed layers are never copied out of the archive.
 * Members are delimited as Go's archive/tar does (tar-format.ts); meta records and the number of
 * members are bounded, so a crafted outer archive cannot exhaust memory while it is indexed.
 */
import fs from 'node:fs';
import { BLOCK, decodeHeader, finishHeader, gnuLongName, isMetaType, isZeroBlock, MAX_META_RECORD, padded, parsePax, TarFormatError } from './tar-format.ts';

export interface Member {
  name: string;
  offset: number;
  size: number;
  type: string;
  linkname: string;
}

/** More members than any docker-save archive has (one per layer, config, manifest and directory). */
export const MAX_MEMBERS = 200_000;

export function normalizeMemberName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

function readFull(fd: number, buf: Buffer, pos: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) throw new TarFormatError(`archive ends inside a record at byte ${pos}`);
    done += n;
  }
}

export function indexTarFile(file: string): Map<string, Member> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const size = fs.fstatSync(fd).size;
    const out = new Map<string, Member>();
    const buf = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax: Map<string, Buffer> | undefined;
    let gnuName: string | undefined;
    let gnuLink: string | undefined;
    while (pos + BLOCK <= size) {
      readFull(fd, buf, pos);
      if (isZeroBlock(buf)) break;
      let raw;
      try {
        raw = decodeHeader(buf);
      } catch (e) {
        throw new TarFormatError(`${(e as Error).message} (header at byte ${pos})`);
      }
      pos += BLOCK;
      if (isMetaType(raw.typeflag)) {
        if (raw.size > MAX_META_RECORD || raw.size < 0) throw new TarFormatError(`${raw.typeflag} record of ${raw.size} bytes at byte ${pos - BLOCK} (at most ${MAX_META_RECORD} are read)`);
        const data = Buffer.alloc(raw.size);
        readFull(fd, data, pos);
        if (raw.typeflag === 'x') pax = parsePax(data);
        else if (raw.typeflag === 'g') { parsePax(data); pax = gnuName = gnuLink = undefined; }
        else if (raw.typeflag === 'L') gnuName = gnuLongName(data);
        else if (raw.typeflag === 'K') gnuLink = gnuLongName(data);
        pos += padded(raw.size);
        continue;
      }
      const h = finishHeader(raw, pax, gnuName, gnuLink);
      pax = gnuName = gnuLink = undefined;
      const dataSize = h.size; // 0 for header-only types
      if (pos + dataSize > size) throw new TarFormatError(`truncated archive: member ${h.path} runs past the end`);
      if (out.size >= MAX_MEMBERS) throw new TarFormatError(`more than ${MAX_MEMBERS} members (not a docker save archive)`);
      out.set(normalizeMemberName(h.path), { name: h.path, offset: pos, size: dataSize, type: h.type, linkname: h.linkname });
      pos += padded(dataSize);
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Read a (small) member whole; `max` bounds what is buffered (the caller names the member in its error). */
export function readMember(file: string, m: Member, max = Number.MAX_SAFE_INTEGER): Buffer {
  if (m.size > max) throw new TarFormatError(`member ${m.name} is ${m.size} bytes, more than the ${max} allowed`);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(m.size);
    readFull(fd, buf, m.offset);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}
