/**
 * A push parser for an outer archive (a `docker save` stream) that hands each member's data to a
 * per-member consumer as it streams by, with the member's absolute data offset. engine.ts uses it
 * to hash and scan every layer while the save is still being written to its spool file.
 * Entries are delimited as Go's archive/tar does (tar-format.ts finishHeader): header-only types
 * carry no data, PAX sizes count, meta records are bounded.
 */
import { BlockFiller, Countdown } from './tar-blocks.ts';
import { decodeHeader, finishHeader, gnuLongName, isMetaType, isZeroBlock, MAX_META_RECORD, padded, parsePax, TarFormatError, type TarHeader } from './tar-format.ts';

export interface MemberSink {
  data(chunk: Buffer): void;
  end(): void;
}

export class TarSplitter {
  private pos = 0;
  private readonly head = new BlockFiller();
  private readonly dataLeft = new Countdown();
  private readonly padLeft = new Countdown();
  private sink: MemberSink | null = null;
  private meta: { type: string; parts: Buffer[] } | null = null;
  private pax: Map<string, Buffer> | undefined;
  private gnuName: string | undefined;
  private gnuLink: string | undefined;
  ended = false;

  constructor(private readonly onMember: (h: TarHeader, offset: number) => MemberSink | null) {}

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.ended) {
      let k: number;
      if (this.dataLeft.left > 0) {
        k = this.dataLeft.take(i, n);
        const part = chunk.subarray(i, i + k);
        if (this.meta) this.meta.parts.push(Buffer.from(part));
        else this.sink?.data(part);
        if (this.dataLeft.left === 0) this.endMember();
      } else if (this.padLeft.left > 0) k = this.padLeft.take(i, n);
      else k = this.head.take(chunk, i, n);
      i += k;
      this.pos += k;
      if (!this.head.full) continue;
      this.head.full = false;
      if (isZeroBlock(this.head.buf)) { this.ended = true; break; }
      const raw = decodeHeader(this.head.buf);
      let size: number;
      if (isMetaType(raw.typeflag)) {
        if (raw.size > MAX_META_RECORD || raw.size < 0) throw new TarFormatError(`${raw.typeflag} record of ${raw.size} bytes before ${JSON.stringify(raw.name)} (at most ${MAX_META_RECORD} are read)`);
        this.meta = { type: raw.typeflag, parts: [] };
        size = raw.size;
      } else {
        const h = finishHeader(raw, this.pax, this.gnuName, this.gnuLink);
        this.pax = undefined;
        this.gnuName = undefined;
        this.gnuLink = undefined;
        this.sink = h.type === 'file' ? this.onMember(h, this.pos) : null;
        size = h.size; // 0 for header-only types (1-6), the PAX size for files, as Go reads it
      }
      this.dataLeft.left = size;
      this.padLeft.left = padded(size) - size;
      if (size === 0) this.endMember();
    }
  }

  private endMember(): void {
    if (this.meta) {
      const data = Buffer.concat(this.meta.parts);
      if (this.meta.type === 'x') this.pax = parsePax(data);
      else if (this.meta.type === 'g') { parsePax(data); this.pax = undefined; this.gnuName = undefined; this.gnuLink = undefined; }
      else if (this.meta.type === 'L') this.gnuName = gnuLongName(data);
      else if (this.meta.type === 'K') this.gnuLink = gnuLongName(data);
      this.meta = null;
      return;
    }
    this.sink?.end();
    this.sink = null;
  }
}
