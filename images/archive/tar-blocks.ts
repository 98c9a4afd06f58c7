/**
 * The chunk-walking mechanics shared by the push tar parsers (tar-scan.ts, tar-split.ts): a
 * 512-byte header block assembled across chunk boundaries, and countdowns over data / padding.
 * Both are allocated once per parser and never per chunk: this is the hot path of image reading.
 */
import { BLOCK } from './tar-format.ts';

/** Assembles one header block from chunks; `buf` holds it once `full` is true. */
export class BlockFiller {
  readonly buf = Buffer.alloc(BLOCK);
  /** Bytes of the block gathered so far (0 between blocks). */
  fill = 0;
  /** Set by the take() that completes the block (`fill` is then back to 0); the caller clears it once it has read `buf`. */
  full = false;

  /** Copies from chunk[i, end) up to the end of the block; returns the bytes consumed. */
  take(chunk: Buffer, i: number, end: number): number {
    const k = Math.min(BLOCK - this.fill, end - i);
    chunk.copy(this.buf, this.fill, i, i + k);
    this.fill += k;
    this.full = this.fill === BLOCK;
    if (this.full) this.fill = 0;
    return k;
  }
}

/** Bytes still to pass over (entry data, padding, a meta record); take() counts some of them off. */
export class Countdown {
  left = 0;

  /** Counts off as many of chunk[i, end) as are left; returns the bytes consumed. */
  take(i: number, end: number): number {
    const k = Math.min(this.left, end - i);
    this.left -= k;
    return k;
  }
}
