/**
 * MD5 (RFC 1321) of a short string, in JavaScript. Catalog rows are keyed by the MD5 of their path:
 * a 50,000-entry catalog needs 50,000 of them, and for ~50-byte inputs node:crypto's per-call
 * overhead (1.6 us) is four times the hashing itself. Checked against node:crypto in the tests.
 */
const S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

const encoder = new TextEncoder();
let buf = new Uint8Array(256);
const M = new Int32Array(16);
/** The digest as four little-endian 32-bit words (a, b, c, d). */
const out = new Int32Array(4);

function blocks(bytes: Uint8Array, nblocks: number): void {
  let a0 = 0x67452301;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476;
  for (let blk = 0; blk < nblocks; blk++) {
    const o = blk * 64;
    for (let j = 0; j < 16; j++) M[j] = bytes[o + 4 * j] | (bytes[o + 4 * j + 1] << 8) | (bytes[o + 4 * j + 2] << 16) | (bytes[o + 4 * j + 3] << 24);
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const t = (f + a + K[i] + M[g]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << S[i]) | (t >>> (32 - S[i])))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  out[0] = a0;
  out[1] = b0;
  out[2] = c0;
  out[3] = d0;
}

/** MD5 of the UTF-8 bytes of `s`, as four little-endian 32-bit words (valid until the next call). */
export function md5Words(s: string): Int32Array {
  // UTF-8 is at most 3 bytes per UTF-16 unit; + 1 padding byte + 8 length bytes + a block of slack
  if (buf.length < s.length * 3 + 72) buf = new Uint8Array(s.length * 3 + 136);
  const n = encoder.encodeInto(s, buf).written;
  const nblocks = ((n + 8) >> 6) + 1;
  buf.fill(0, n, nblocks * 64);
  buf[n] = 0x80;
  const bits = n * 8;
  const end = nblocks * 64;
  buf[end - 8] = bits & 0xff;
  buf[end - 7] = (bits >>> 8) & 0xff;
  buf[end - 6] = (bits >>> 16) & 0xff;
  buf[end - 5] = (bits >>> 24) & 0xff;
  const high = Math.floor(bits / 2 ** 32);
  buf[end - 4] = high & 0xff;
  buf[end - 3] = (high >>> 8) & 0xff;
  buf[end - 2] = (high >>> 16) & 0xff;
  buf[end - 1] = (high >>> 24) & 0xff;
  blocks(buf, nblocks);
  return out;
}
