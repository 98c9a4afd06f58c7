/**
 * Index a tar file on disk by seeking from header to header: name -> { offset, size }.
 * Used for docker-save archives, whose members (layers, configs, manifests) are then read in place
 * by offset, so uncompressed layers are never copied out of the archive.
 */
import fs from 'node:fs';
import { BLOCK, decodeHeader, finishHeader, isMetaType, isZeroBlock, padded, parsePax } from './tar-format.ts';

export interface Member {
  name: string;
  offset: number;
  size: number;
  type: string;
  linkname: string;
}

export function normalizeMemberName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

export function indexTarFile(file: string): Map<string, Member> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const out = new Map<string, Member>();
    const buf = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax: Map<string, Buffer> | undefined;
    let gnuName: string | undefined;
    let gnuLink: string | undefined;
    while (pos + BLOCK <= size) {
      fs.readSync(fd, buf, 0, BLOCK, pos);
      if (isZeroBlock(buf)) break;
      const raw = decodeHeader(buf);
      pos += BLOCK;
      if (isMetaType(raw.typeflag)) {
        const data = Buffer.alloc(raw.size);
        fs.readSync(fd, data, 0, raw.size, pos);
        if (raw.typeflag === 'x') pax = parsePax(data);
        else if (raw.typeflag === 'L') gnuName = data.toString('utf8').replace(/\0+$/, '');
        else if (raw.typeflag === 'K') gnuLink = data.toString('utf8').replace(/\0+$/, '');
        pos += padded(raw.size);
        continue;
      }
      const h = finishHeader(raw, pax, gnuName, gnuLink);
      pax = gnuName = gnuLink = undefined;
      const dataSize = h.type === 'file' ? h.size : 0;
      if (pos + dataSize > size) throw new Error(`truncated archive: member ${h.path} runs past the end`);
      out.set(normalizeMemberName(h.path), { name: h.path, offset: pos, size: dataSize, type: h.type, linkname: h.linkname });
      pos += padded(dataSize);
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

export function readMember(file: string, m: Member): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    let done = 0;
    while (done < m.size) {
      const n = fs.readSync(fd, buf, done, m.size - done, m.offset + done);
      if (n === 0) throw new Error(`short read of ${m.name}`);
      done += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}
