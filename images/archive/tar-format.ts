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

export class TarFormatError extends Error {}

/** Bytes of a PAX / GNU long-name record that are read at most (Go's archive/tar: maxSpecialFileSize). */
export const MAX_META_RECORD = 1 << 20;

/**
 * Go's `parser.parseOctal` (archive/tar strconv.go): spaces and NULs trimmed at both ends, cut at
 * the first NUL, then strictly octal. A field Go refuses (ErrHeader) is refused here too.
 */
function parseOctal(buf: Buffer, start: number, len: number, field: string): number {
  let s = start;
  let e = start + len;
  while (s < e && (buf[s] === 0x20 || buf[s] === 0)) s++;
  while (e > s && (buf[e - 1] === 0x20 || buf[e - 1] === 0)) e--;
  if (s === e) return 0;
  const nul = buf.indexOf(0, s);
  if (nul !== -1 && nul < e) e = nul;
  const str = buf.toString('latin1', s, e);
  if (!/^[0-7]+$/.test(str)) throw new TarFormatError(`invalid ${field} field ${JSON.stringify(str)} (not an octal number)`);
  return parseInt(str, 8);
}

/** Go's `parser.parseNumeric`: base-256 (two's complement, high bit set) or octal. */
function parseNumeric(buf: Buffer, start: number, len: number, field: string): number {
  if (!(buf[start] & 0x80)) return parseOctal(buf, start, len, field);
  const inv = buf[start] & 0x40 ? 0xff : 0;
  let x = 0n;
  for (let i = 0; i < len; i++) {
    let c = buf[start + i] ^ inv;
    if (i === 0) c &= 0x7f;
    if (x >> 56n) throw new TarFormatError(`invalid ${field} field (base-256 number overflows)`);
    x = (x << 8n) | BigInt(c);
  }
  if (x >> 63n) throw new TarFormatError(`invalid ${field} field (base-256 number overflows)`);
  const v = inv ? -x - 1n : x;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`${field} field out of range`);
  return Number(v);
}

export function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Go's block.getFormat: the checksum may be the unsigned or the signed byte sum. */
function checksumOk(buf: Buffer): boolean {
  let stored: number;
  try {
    stored = parseOctal(buf, 148, 8, 'checksum');
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 32 : buf[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

type Format = 'v7' | 'ustar' | 'star' | 'gnu';

function formatOf(buf: Buffer): Format {
  const magic = buf.toString('latin1', 257, 263);
  if (magic === 'ustar\u0000') return buf.toString('latin1', 508, 512) === 'tar\u0000' ? 'star' : 'ustar';
  if (magic === 'ustar ' && buf.toString('latin1', 263, 265) === ' \u0000') return 'gnu';
  return 'v7';
}

function isAsciiBytes(b: Buffer): boolean {
  for (const c of b) if (c >= 0x80) return false;
  return true;
}

/** The name prefix, per format, exactly as Go's Reader.readHeader picks it (STAR: 131 bytes; GNU: none, except Go's pre-1.8 fallback). */
function prefixOf(buf: Buffer, format: Format): Buffer {
  if (format === 'ustar') return cstr(buf, 345, 155);
  if (format === 'star') {
    parseNumeric(buf, 476, 12, 'atime');
    parseNumeric(buf, 488, 12, 'ctime');
    return cstr(buf, 345, 131);
  }
  if (format === 'gnu') {
    try {
      if (buf[345] !== 0) parseNumeric(buf, 345, 12, 'atime');
      if (buf[357] !== 0) parseNumeric(buf, 357, 12, 'ctime');
      return Buffer.alloc(0);
    } catch {
      // archive/tar reader.go: unparsable GNU atime/ctime are read as a USTAR prefix when ASCII
      const p = cstr(buf, 345, 155);
      return isAsciiBytes(p) ? p : Buffer.alloc(0);
    }
  }
  return Buffer.alloc(0);
}

/**
 * Decode one header block the way Go's archive/tar (Docker, containerd) does: same format
 * detection, same prefix rules, same numeric parsing; whatever Go refuses is refused.
 */
export function decodeHeader(buf: Buffer): RawHeader {
  const rawName = cstr(buf, 0, 100);
  const label = JSON.stringify(rawName.toString('utf8'));
  if (!checksumOk(buf)) throw new TarFormatError('bad tar header checksum (not a tar archive, or corrupted)');
  try {
    const format = formatOf(buf);
    const prefix = format === 'v7' ? Buffer.alloc(0) : prefixOf(buf, format);
    const nameBytes = prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), rawName]) : Buffer.from(rawName);
    const ext = format !== 'v7';
    return {
      name: nameBytes.toString('utf8'),
      nameBytes,
      mode: parseNumeric(buf, 100, 8, 'mode'),
      uid: parseNumeric(buf, 108, 8, 'uid'),
      gid: parseNumeric(buf, 116, 8, 'gid'),
      size: parseNumeric(buf, 124, 12, 'size'),
      mtime: parseNumeric(buf, 136, 12, 'mtime'),
      typeflag: String.fromCharCode(buf[156]),
      linkname: cstr(buf, 157, 100).toString('utf8'),
      uname: ext ? cstr(buf, 265, 32).toString('latin1') : '',
      gname: ext ? cstr(buf, 297, 32).toString('latin1') : '',
      devmajor: ext ? parseNumeric(buf, 329, 8, 'devmajor') : 0,
      devminor: ext ? parseNumeric(buf, 337, 8, 'devminor') : 0,
    };
  } catch (e) {
    if (e instanceof TarFormatError) throw new TarFormatError(`tar header of ${label}: ${e.message}`);
    throw e;
  }
}

function hasNul(b: Buffer): boolean {
  return b.indexOf(0) !== -1;
}

/**
 * Parse PAX extended header records exactly as Go's parsePAXRecord does (a malformed record is an
 * error, never skipped); values kept as raw bytes (xattrs may be binary).
 */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    const nStr = sp === -1 ? '' : data.toString('latin1', pos, sp);
    const n = /^[+-]?[0-9]+$/.test(nStr) ? parseInt(nStr, 10) : NaN;
    const left = data.length - pos;
    if (!Number.isFinite(n) || n < 5 || n > left || n - (nStr.length + 1) <= 0) throw new TarFormatError(`malformed PAX record at byte ${pos} of the extended header`);
    const restStart = sp + 1;
    const m = n - (nStr.length + 1);
    if (data[restStart + m - 1] !== 0x0a) throw new TarFormatError(`malformed PAX record at byte ${pos} of the extended header (no newline)`);
    const rec = data.subarray(restStart, restStart + m - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError(`malformed PAX record at byte ${pos} of the extended header (no key=value)`);
    const k = rec.subarray(0, eq);
    const v = rec.subarray(eq + 1);
    const key = k.toString('utf8');
    const nulOk = key === 'path' || key === 'linkpath' || key === 'uname' || key === 'gname' ? !hasNul(v) : !hasNul(k);
    if (!nulOk) throw new TarFormatError(`PAX record ${JSON.stringify(key)} contains a NUL byte`);
    out.set(key, Buffer.from(v));
    pos = restStart + m;
  }
  return out;
}

/** Go's parseString for GNU long names: the bytes up to the first NUL. */
export function gnuLongName(data: Buffer): string {
  const nul = data.indexOf(0);
  return (nul === -1 ? data : data.subarray(0, nul)).toString('utf8');
}

const TYPES: Record<string, EntryType> = {
  '0': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

/** Header types that carry metadata for the next entry rather than being entries themselves. */
export function isMetaType(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
}

function paxInt(key: string, v: string, path: string): number {
  // strconv.ParseInt(v, 10, 64) as in Go's mergePAX
  if (!/^[+-]?[0-9]+$/.test(v)) throw new TarFormatError(`invalid PAX ${key} record ${JSON.stringify(v)} for entry ${JSON.stringify(path)} (not a decimal integer)`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new TarFormatError(`PAX ${key} record ${JSON.stringify(v)} for entry ${JSON.stringify(path)} is out of range`);
  return n;
}

function paxTime(key: string, v: string, path: string): number {
  // Go's parsePAXTime: decimal seconds, optional '.' and digits
  if (!/^[+-]?[0-9]+(\.[0-9]*)?$/.test(v)) throw new TarFormatError(`invalid PAX ${key} record ${JSON.stringify(v)} for entry ${JSON.stringify(path)}`);
  return Math.floor(parseFloat(v));
}

/**
 * Merge a raw header with pending PAX / GNU long name records into an entry header, in Go's order
 * (archive/tar reader.go `next`): PAX records first (empty values keep the USTAR field), then GNU
 * long names (which win over PAX), then a '\0' typeflag with a trailing '/' is a directory.
 * Typeflags 1-6 are header-only whatever their size says (Go's isHeaderOnlyType): `size` is 0 for
 * them and no data follows. Refused: type 7 (Docker refuses it: "unhandled tar header type"),
 * GNU sparse files (Go rewrites their name and size), unknown types, a negative size.
 */
export function finishHeader(raw: RawHeader, pax: Map<string, Buffer> | undefined, gnuName?: string, gnuLink?: string): TarHeader {
  let path = raw.name;
  let linkname = raw.linkname;
  let size = raw.size;
  let uid = raw.uid;
  let gid = raw.gid;
  let mtime = raw.mtime;
  const xattrs = new Map<string, Buffer>();
  if (pax) {
    for (const [k, vb] of pax) {
      if (vb.length === 0) continue; // Go: keep the original USTAR value
      const v = vb.toString('utf8');
      if (k === 'path') path = v;
      else if (k === 'linkpath') linkname = v;
      else if (k === 'size') size = paxInt('size', v, gnuName ?? path);
      else if (k === 'uid') uid = paxInt('uid', v, gnuName ?? path);
      else if (k === 'gid') gid = paxInt('gid', v, gnuName ?? path);
      else if (k === 'mtime') mtime = paxTime('mtime', v, gnuName ?? path);
      else if (k === 'atime' || k === 'ctime') paxTime(k, v, gnuName ?? path);
      else if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), vb);
      else if (k.startsWith('GNU.sparse.')) throw new TarFormatError(`entry ${JSON.stringify(gnuName ?? path)} is a GNU sparse file (PAX ${k}), which gridforge does not read`);
    }
  }
  if (gnuName) path = gnuName;
  if (gnuLink) linkname = gnuLink;
  let tf = raw.typeflag;
  if (tf === '\u0000') tf = path.endsWith('/') ? '5' : '0';
  if (tf === '7') throw new TarFormatError(`entry ${JSON.stringify(path)} has type 7 (contiguous file), which Docker refuses ("unhandled tar header type")`);
  const type = TYPES[tf];
  if (!type) throw new TarFormatError(`unsupported tar entry type ${JSON.stringify(tf)} for ${JSON.stringify(path)}`);
  if (type === 'file' && size < 0) throw new TarFormatError(`entry ${JSON.stringify(path)} has a negative size`);
  return {
    path,
    type,
    mode: raw.mode & 0o7777,
    uid,
    gid,
    size: type === 'file' ? size : 0,
    mtime,
    linkname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    xattrs,
  };
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
