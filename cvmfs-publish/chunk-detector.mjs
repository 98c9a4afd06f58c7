// Content-defined cut points of CernVM-FS file chunking (plain JS: the compression workers load it
// without tsx). The same cut points as cvmfs_server's Xor32Detector (cvmfs/ingestion/chunk_detector.cc
// in github.com/cvmfs/cvmfs): a rolling xor32 checksum, x = (x << 1) ^ byte over uint32, whose value
// depends only on the last 32 bytes; a cut falls before the first byte at or after `min` bytes
// into the chunk where |int32(x) - 0x7fffffff| < floor(0xffffffff / avg), else at `max` bytes.
// The checksum restarts at each cut and is primed with the 32 bytes before `min`, so the value at
// each position is the same as a sliding window's (cut points depend on content, not on reads).

/** cvmfs_server defaults (cvmfs/server/cvmfs_server_coda.sh CVMFS_DEFAULT_*_CHUNK_SIZE). */
export const DEFAULT_CHUNKING = Object.freeze({ min: 4194304, avg: 8388608, max: 16777216 });
const WINDOW = 32;
const MAGIC = 0x7fffffff; // std::numeric_limits<uint32_t>::max() / 2
const SIGN = -2147483648;

/** The detector's threshold for an average chunk size (uint32 max / avg, as an int32). */
export function thresholdOf(avg) {
  return Math.floor(0xffffffff / avg) | 0;
}

/** True when a file of `size` bytes is offered for chunking (Xor32Detector::MightFindChunks). */
export function mightChunk(size, params) {
  return size > params.min;
}

/**
 * The end of the chunk starting at `data[0]`, given `len` bytes of it (the rest of the file, or at
 * least `max` bytes): the index of the first candidate cut in [min, min(len, max)), else `max` when
 * len >= max, else `len` (the chunk is the rest of the file).
 */
export function nextCut(data, len, min, max, threshold) {
  if (len <= min) return len;
  let x = 0;
  for (let i = min - WINDOW; i < min; i++) x = (x << 1) ^ data[i];
  const end = len < max ? len : max;
  // |d| < t for d = int32(x - MAGIC) <=> uint32(d + t - 1) < 2t - 1, compared as int32 with the
  // sign bit flipped (int32 arithmetic only: a tight loop, no doubles). abs(INT32_MIN) stays
  // negative in cvmfs (built with -fwrapv), so x = 0xffffffff (d = INT32_MIN) is a cut too.
  const k = (threshold - 1 - MAGIC) | 0;
  const lim = ((2 * threshold - 1) ^ SIGN) | 0;
  for (let i = min; i < end; i++) {
    x = (x << 1) ^ data[i];
    if ((((x + k) | 0) ^ SIGN) < lim || x === -1) return i;
  }
  return end;
}

/** Every cut point of content held in memory (chunk ends, the last one = its length). */
export function cutPoints(data, params) {
  const threshold = thresholdOf(params.avg);
  const cuts = [];
  if (!mightChunk(data.length, params)) return [data.length];
  let start = 0;
  while (start < data.length) {
    const rest = data.length - start;
    const cut = nextCut(data.subarray(start), rest, params.min, params.max, threshold);
    start += cut;
    cuts.push(start);
  }
  return cuts;
}
