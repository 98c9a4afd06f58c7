/**
 * The tar format at the byte level: decoding one 512-byte header block, PAX records (binary-safe,
 * so `SCHILY.xattr.security.capability` survives) and encoding deterministic headers.
 * Readers (tar-scan.ts, tar-index.ts) and the flatten writer build on this; nothing here does I/O.
 */

export const BLOCK = 512;

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** A raw header as stored: before PAX/GNU long-name records are merged in. */
export interface RawHeader {
  name: string;
  nameBytes: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** A full entry header (PAX and GNU long names applied). */
export interface TarHeader {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

function cstr(buf: Buffer, start: number, len: number): Buffer {
  const end = buf.indexOf(0, start);
  return buf.subarray(start, end === -1 || end > start + len ? start + len : end);
}

function num(buf: Buffer, start: number, len: number): number {
  // base-256 (GNU) when the high bit of the first byte is set
  if (buf[start] & 0x80) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + buf[start + i];
    // first byte's low 7 bits
    v += (buf[start] & 0x7f) * 256 ** (len - 1);
    return v;
  }
  const s = cstr(buf, start, len).toString('latin1').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

export function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Checksum check: sum of header bytes with the checksum field as spaces. */
function checksumOk(buf: Buffer): boolean {
  const stored = num(buf, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : buf[i];
  return sum === stored;
}

export class TarFormatError extends Error {}

export function decodeHeader(buf: Buffer): RawHeader {
  if (!checksumOk(buf)) throw new TarFormatError('bad tar header checksum (not a tar archive, or corrupted)');
  // POSIX ustar ("ustar\0" + "00") has a 155-byte prefix field; GNU ("ustar  \0") has none.
  const posix = buf.subarray(257, 265).toString('latin1') === 'ustar\u000000';
  let nameBytes = cstr(buf, 0, 100);
  if (posix) {
    const prefix = cstr(buf, 345, 155);
    if (prefix.length > 0) nameBytes = Buffer.concat([prefix, Buffer.from('/'), nameBytes]);
  }
  return {
    name: nameBytes.toString('utf8'),
    nameBytes: Buffer.from(nameBytes),
    mode: num(buf, 100, 8),
    uid: num(buf, 108, 8),
    gid: num(buf, 116, 8),
    size: num(buf, 124, 12),
    mtime: num(buf, 136, 12),
    typeflag: String.fromCharCode(buf[156] || 0x30),
    linkname: cstr(buf, 157, 100).toString('utf8'),
    uname: cstr(buf, 265, 32).toString('latin1'),
    gname: cstr(buf, 297, 32).toString('latin1'),
    devmajor: num(buf, 329, 8),
    devminor: num(buf, 337, 8),
  };
}

/** Parse PAX extended header records; values kept as raw bytes (xattrs may be binary). */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(data.subarray(pos, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length) throw new TarFormatError('malformed PAX record');
    const rec = data.subarray(sp + 1, pos + len - 1); // drop trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq !== -1) out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file', '\u0000': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

/** Header types that carry metadata for the next entry rather than being entries themselves. */
export function isMetaType(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
}

/** Merge a raw header with pending PAX / GNU long name records into an entry header. */
export function finishHeader(raw: RawHeader, pax: Map<string, Buffer> | undefined, gnuName?: string, gnuLink?: string): TarHeader {
  const type = TYPES[raw.typeflag];
  if (!type) throw new TarFormatError(`unsupported tar entry type '${raw.typeflag}' for ${raw.name}`);
  const h: TarHeader = {
    path: gnuName ?? raw.name,
    type,
    mode: raw.mode & 0o7777,
    uid: raw.uid,
    gid: raw.gid,
    size: type === 'file' ? raw.size : 0,
    mtime: raw.mtime,
    linkname: gnuLink ?? raw.linkname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    xattrs: new Map(),
  };
  if (pax) {
    for (const [k, v] of pax) {
      if (k === 'path') h.path = v.toString('utf8');
      else if (k === 'linkpath') h.linkname = v.toString('utf8');
      else if (k === 'size' && type === 'file') h.size = parseInt(v.toString('latin1'), 10);
      else if (k === 'uid') h.uid = parseInt(v.toString('latin1'), 10);
      else if (k === 'gid') h.gid = parseInt(v.toString('latin1'), 10);
      else if (k === 'mtime') h.mtime = Math.floor(parseFloat(v.toString('latin1')));
      else if (k.startsWith('SCHILY.xattr.')) h.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    }
  }
  // The data size of a non-file entry is still what the raw header says (skipped by readers).
  return h;
}

/** Number of bytes a data section of `size` occupies (padded to 512). */
export function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

// ---------------------------------------------------------------- encoding

function writeStr(buf: Buffer, s: Buffer, off: number, len: number): void {
  s.copy(buf, off, 0, Math.min(len, s.length));
}

function writeOct(buf: Buffer, v: number, off: number, len: number): boolean {
  const s = v.toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'latin1');
  return true;
}

const TYPEFLAG: Record<EntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function block(name: Buffer, h: { mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string; linkname: Buffer; devmajor: number; devminor: number }): { buf: Buffer; fits: boolean } {
  const buf = Buffer.alloc(BLOCK);
  let fits = true;
  writeStr(buf, name, 0, 100);
  fits = writeOct(buf, h.mode, 100, 8) && fits;
  fits = writeOct(buf, h.uid, 108, 8) && fits;
  fits = writeOct(buf, h.gid, 116, 8) && fits;
  fits = writeOct(buf, h.size, 124, 12) && fits;
  fits = writeOct(buf, Math.max(0, h.mtime), 136, 12) && fits;
  buf.write(h.typeflag, 156, 1, 'latin1');
  writeStr(buf, h.linkname, 157, 100);
  buf.write('ustar\u000000', 257, 8, 'latin1');
  writeOct(buf, h.devmajor, 329, 8);
  writeOct(buf, h.devminor, 337, 8);
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i];
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return { buf, fits };
}

/**
 * Encode one entry's header(s): a PAX header first when the name, link target, numbers or xattrs
 * do not fit USTAR (or are not ASCII), then the USTAR header. Deterministic: the PAX header has a
 * fixed name and mtime 0, xattrs are written in sorted key order.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const pathBytes = Buffer.from(h.path, 'utf8');
  const linkBytes = Buffer.from(h.linkname, 'utf8');
  const records: Buffer[] = [];
  let name = pathBytes;
  if (pathBytes.length > 100 || !isAscii(h.path)) {
    records.push(paxRecord('path', pathBytes));
    name = pathBytes.subarray(0, 100);
  }
  let link = linkBytes;
  if (linkBytes.length > 100 || !isAscii(h.linkname)) {
    records.push(paxRecord('linkpath', linkBytes));
    link = linkBytes.subarray(0, 100);
  }
  const size = h.type === 'file' ? h.size : 0;
  const fields = { mode: h.mode & 0o7777, uid: h.uid, gid: h.gid, size, mtime: h.mtime, typeflag: TYPEFLAG[h.type], linkname: link, devmajor: h.devmajor, devminor: h.devminor };
  const probe = block(name, fields);
  if (!probe.fits) {
    if (h.uid > 0o7777777) { records.push(paxRecord('uid', Buffer.from(String(h.uid)))); fields.uid = 0; }
    if (h.gid > 0o7777777) { records.push(paxRecord('gid', Buffer.from(String(h.gid)))); fields.gid = 0; }
    if (size > 0o77777777777) { records.push(paxRecord('size', Buffer.from(String(size)))); fields.size = 0; }
    if (h.mtime > 0o77777777777) { records.push(paxRecord('mtime', Buffer.from(String(h.mtime)))); fields.mtime = 0; }
  }
  for (const k of [...h.xattrs.keys()].sort()) records.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs.get(k)!));
  const main = block(name, fields).buf;
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const paxHead = block(Buffer.from('PaxHeaders/entry'), { mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, typeflag: 'x', linkname: Buffer.alloc(0), devmajor: 0, devminor: 0 }).buf;
  const pad = Buffer.alloc(padded(data.length) - data.length);
  return Buffer.concat([paxHead, data, pad, main]);
}

/** Size of encodeHeader(h) without keeping it. */
export function encodedHeaderSize(h: TarHeader): number {
  return encodeHeader(h).length;
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
