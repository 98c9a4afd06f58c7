/**
 * A push parser for an outer archive (a `docker save` stream) that hands each member's data to a
 * per-member consumer as it streams by, with the member's absolute data offset. engine.ts uses it
 * to hash and scan every layer while the save is still being written to its spool file.
 */
import { BLOCK, decodeHeader, finishHeader, isMetaType, isZeroBlock, padded, parsePax, type TarHeader } from './tar-format.ts';

export interface MemberSink {
  data(chunk: Buffer): void;
  end(): void;
}

export class TarSplitter {
  private pos = 0;
  private head = Buffer.alloc(BLOCK);
  private headFill = 0;
  private dataLeft = 0;
  private padLeft = 0;
  private sink: MemberSink | null = null;
  private meta: { type: string; parts: Buffer[] } | null = null;
  private pax: Map<string, Buffer> | undefined;
  private gnuName: string | undefined;
  ended = false;

  constructor(private readonly onMember: (h: TarHeader, offset: number) => MemberSink | null) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.ended) {
      if (this.dataLeft > 0) {
        const k = Math.min(this.dataLeft, chunk.length - i);
        const part = chunk.subarray(i, i + k);
        if (this.meta) this.meta.parts.push(Buffer.from(part));
        else this.sink?.data(part);
        this.dataLeft -= k;
        i += k;
        this.pos += k;
        if (this.dataLeft === 0) this.endMember();
        continue;
      }
      if (this.padLeft > 0) {
        const k = Math.min(this.padLeft, chunk.length - i);
        this.padLeft -= k;
        i += k;
        this.pos += k;
        continue;
      }
      const k = Math.min(BLOCK - this.headFill, chunk.length - i);
      chunk.copy(this.head, this.headFill, i, i + k);
      this.headFill += k;
      i += k;
      this.pos += k;
      if (this.headFill < BLOCK) continue;
      this.headFill = 0;
      if (isZeroBlock(this.head)) { this.ended = true; break; }
      const raw = decodeHeader(this.head);
      const size = raw.typeflag === '1' || raw.typeflag === '2' || raw.typeflag === '5' ? 0 : raw.size;
      if (isMetaType(raw.typeflag)) {
        this.meta = { type: raw.typeflag, parts: [] };
      } else {
        const h = finishHeader(raw, this.pax, this.gnuName);
        this.pax = undefined;
        this.gnuName = undefined;
        this.sink = h.type === 'file' ? this.onMember(h, this.pos) : null;
      }
      this.dataLeft = size;
      this.padLeft = padded(size) - size;
      if (size === 0) this.endMember();
    }
  }

  private endMember(): void {
    if (this.meta) {
      const data = Buffer.concat(this.meta.parts);
      if (this.meta.type === 'x') this.pax = parsePax(data);
      else if (this.meta.type === 'L') this.gnuName = data.toString('utf8').replace(/\0+$/, '');
      this.meta = null;
      return;
    }
    this.sink?.end();
    this.sink = null;
  }
}
