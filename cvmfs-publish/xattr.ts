/**
 * The catalog's `xattr` blob (cvmfs xattr.cc, version 1): u8 version, u8 count, then per entry
 * u8 len_key, u8 len_value, key bytes, value bytes; keys sorted.
 */
export type Xattrs = Record<string, Buffer>;

export function encodeXattrs(x: Xattrs | undefined): Buffer | null {
  if (!x) return null;
  const keys = Object.keys(x).sort();
  if (keys.length === 0) return null;
  if (keys.length > 255) throw new Error(`too many extended attributes (${keys.length} > 255)`);
  const parts: Buffer[] = [Buffer.from([1, keys.length])];
  for (const k of keys) {
    const kb = Buffer.from(k, 'utf8');
    const vb = x[k];
    if (kb.length === 0 || kb.length > 255) throw new Error(`extended attribute key "${k}" must be 1..255 bytes`);
    if (vb.length > 255) throw new Error(`extended attribute "${k}" value is ${vb.length} bytes (at most 255)`);
    parts.push(Buffer.from([kb.length, vb.length]), kb, vb);
  }
  return Buffer.concat(parts);
}

export function decodeXattrs(blob: Buffer | null | undefined): Xattrs | undefined {
  if (!blob || blob.length === 0) return undefined;
  if (blob.length < 2 || blob[0] !== 1) throw new Error(`unsupported xattr blob version ${blob[0]}`);
  const n = blob[1];
  const out: Xattrs = {};
  let pos = 2;
  for (let i = 0; i < n; i++) {
    if (pos + 2 > blob.length) throw new Error('truncated xattr blob');
    const kl = blob[pos];
    const vl = blob[pos + 1];
    pos += 2;
    if (pos + kl + vl > blob.length) throw new Error('truncated xattr blob');
    const k = blob.subarray(pos, pos + kl).toString('utf8');
    out[k] = Buffer.from(blob.subarray(pos + kl, pos + kl + vl));
    pos += kl + vl;
  }
  return out;
}
