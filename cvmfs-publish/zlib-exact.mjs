// Deflate byte-identical to stock zlib's compress2(data, 6) (level 6, windowBits 15, memLevel 8,
// default strategy), for the objects a Stratum-1 rewrites.
//
// `cvmfs_swissknife pull` (cvmfs/swissknife_pull.cc, StoreBuffer(..., compress=true)) does not copy
// the certificate (X) and meta-info (M) objects: it inflates them and deflates them again with the
// system zlib (cvmfs/compression/compression.cc CompressMem2File: deflateInit(Z_DEFAULT_COMPRESSION))
// and stores the result under the original name. Catalogs, history and data objects are copied
// byte for byte, the reflog is rebuilt by the Stratum-1 itself. Node's zlib is Chromium's fork,
// whose deflate output differs from stock zlib for the same input, so an X or M object deflated by
// Node no longer hashes to its name on the replica, and the client refuses the replica ("Failed to
// initialize root file catalog"). pako is a JavaScript port of zlib's deflate: its output equals
// Debian's zlib 1.2.13 (what cvmfs_server links) byte for byte, which
// test/cvmfs-publish/zlib-exact.test.ts checks against python3's zlib (the system libz).
// Plain JS with a .d.mts beside it (pako ships no types), like object-compression.mjs.
import pako from 'pako';

/** The zlib stream stock zlib's compress2(content, 6) writes (what cvmfs_server and a Stratum-1 write). */
export function deflateStockZlib(content) {
  const out = pako.deflate(content, { level: 6, windowBits: 15, memLevel: 8, strategy: 0 });
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
