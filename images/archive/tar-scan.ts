/**
 * A push parser over a tar byte stream that reports each entry's header and the absolute offset of
 * its data, without copying file contents. Callers feed chunks as they stream by (and hash them
 * themselves), so a layer is read exactly once in the scan pass.
 *
 * It walks the stream exactly as Go's archive/tar Reader.next does (Docker and containerd apply
 * layers with it), so gridforge and the engine see the same entries: typeflags 1-6 carry no data
 * whatever their size field says, a PAX header replaces (not merges into) an earlier one, a global
 * header ends the pending PAX / GNU long-name state, meta records are at most 1 MiB.
 */
import { BlockFiller, Countdown } from './tar-blocks.ts';
import { BLOCK, decodeHeader, finishHeader, gnuLongName, isMetaType, isZeroBlock, MAX_META_RECORD, padded, parsePax, TarFormatError, type TarHeader } from './tar-format.ts';

export interface ScannedEntry {
  header: TarHeader;
  /** Absolute offset of the entry's data in the stream. */
  offset: number;
}

export class TarScanner {
  private pos = 0; // bytes consumed so far
  private readonly header = new BlockFiller();
  private readonly skip = new Countdown(); // data bytes (incl. padding) still to skip
  private metaType: string | null = null;
  private metaBuf: Buffer[] = [];
  private readonly metaLeft = new Countdown();
  private readonly metaPad = new Countdown();
  private pax: Map<string, Buffer> | undefined;
  private gnuName: string | undefined;
  private gnuLink: string | undefined;
  private zeroBlocks = 0;
  ended = false;
  /** Stream offset just past the end-of-archive marker (set once `ended`). */
  endPos = -1;

  constructor(private readonly onEntry: (e: ScannedEntry) => void) {}

  /** Feed the next chunk. Bytes after the end-of-archive marker are accepted and ignored (callers bound them). */
  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.ended) {
      let k: number;
      if (this.skip.left > 0) k = this.skip.take(i, n);
      else if (this.metaLeft.left > 0) {
        k = this.metaLeft.take(i, n);
        this.metaBuf.push(Buffer.from(chunk.subarray(i, i + k)));
        if (this.metaLeft.left === 0) this.finishMeta();
      } else if (this.metaPad.left > 0) k = this.metaPad.take(i, n);
      else k = this.header.take(chunk, i, n);
      i += k;
      this.pos += k;
      if (!this.header.full) continue;
      this.header.full = false;
      try {
        this.onBlock();
      } catch (e) {
        if (e instanceof TarFormatError) throw new TarFormatError(`${e.message} (header at byte ${this.pos - BLOCK})`);
        throw e;
      }
    }
    if (this.ended) this.pos += n - i;
  }

  private onBlock(): void {
    const b = this.header.buf;
    if (isZeroBlock(b)) {
      this.zeroBlocks++;
      if (this.zeroBlocks >= 2) {
        this.ended = true;
        this.endPos = this.pos;
      }
      return;
    }
    if (this.zeroBlocks > 0) throw new TarFormatError('single zero block inside the archive');
    const raw = decodeHeader(b);
    if (isMetaType(raw.typeflag)) {
      if (raw.size > MAX_META_RECORD) throw new TarFormatError(`${raw.typeflag} record of ${raw.size} bytes before ${JSON.stringify(raw.name)} (at most ${MAX_META_RECORD} are read, as by Go's archive/tar)`);
      if (raw.size < 0) throw new TarFormatError(`${raw.typeflag} record with a negative size`);
      this.metaType = raw.typeflag;
      this.metaBuf = [];
      this.metaLeft.left = raw.size;
      this.metaPad.left = padded(raw.size) - raw.size;
      if (raw.size === 0) this.finishMeta();
      return;
    }
    const header = finishHeader(raw, this.pax, this.gnuName, this.gnuLink);
    this.pax = undefined;
    this.gnuName = undefined;
    this.gnuLink = undefined;
    this.onEntry({ header, offset: this.pos });
    // header-only types (1-6) have size 0 in `header`: no data blocks follow them
    this.skip.left = padded(header.size);
  }

  private finishMeta(): void {
    const data = Buffer.concat(this.metaBuf);
    this.metaBuf = [];
    const t = this.metaType;
    this.metaType = null;
    if (t === 'x') {
      this.pax = parsePax(data); // Go assigns: a second PAX header replaces the first
    } else if (t === 'g') {
      // Go returns a global header as an entry of its own (Docker ignores it): the pending
      // PAX / GNU state of Reader.next is dropped with it.
      parsePax(data);
      this.pax = undefined;
      this.gnuName = undefined;
      this.gnuLink = undefined;
    } else if (t === 'L') this.gnuName = gnuLongName(data);
    else if (t === 'K') this.gnuLink = gnuLongName(data);
  }

  /**
   * Advance over `n` bytes of entry data without having them (readers that get headers and file
   * contents from different places, e.g. the engine's tar-split metadata). Only valid inside data.
   */
  skipData(n: number): void {
    if (n > this.skip.left) throw new TarFormatError(`${n} bytes of data where the archive has ${this.skip.left}`);
    this.skip.left -= n;
    this.pos += n;
  }

  /** True when the stream ended cleanly (end-of-archive seen, or at a block boundary with nothing pending). */
  get complete(): boolean {
    return this.ended || (this.header.fill === 0 && this.skip.left === 0 && this.metaLeft.left === 0 && this.metaPad.left === 0 && this.zeroBlocks < 2);
  }

  get position(): number {
    return this.pos;
  }
}
