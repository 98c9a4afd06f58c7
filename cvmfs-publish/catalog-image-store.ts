/**
 * Row images of the catalogs written last (`.gridforge/catalog-rows/<catalog hash>`), the base of
 * the next write of each catalog. A cache only: an image is written after its catalog object is
 * stored and names that catalog by hash, so a missing, stale or unreadable image only means the
 * next write of that catalog is a full build. Small catalogs (below MIN_ROWS) are always built in
 * full and get no image.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { writeFileAtomicAsync } from '../base/safe-fs.ts';
import { RowImage } from './catalog-image.ts';
import type { CatalogBase } from './catalog.ts';
import { objectPath } from './format.ts';
import { sha1Hex, type ObjectStore } from './object-store.ts';
import { stateDir } from './repository.ts';

const inflate = promisify(zlib.inflate);

/** Catalogs with fewer rows are built in full in a few milliseconds: no image is kept for them. */
export const MIN_ROWS = 2048;

export class RowImageStore {
  private readonly dir: string;

  constructor(repoDir: string) {
    this.dir = path.join(stateDir(repoDir), 'catalog-rows');
  }

  private file(hash: string): string {
    return path.join(this.dir, hash);
  }

  /**
   * Keep the image of the catalog `hash` (call after the catalog object is stored). Written on the
   * thread pool; a failed write leaves no file (the next write of that catalog is a full build).
   */
  async write(hash: string, image: RowImage): Promise<void> {
    if (image.count < MIN_ROWS) return;
    try {
      await fs.promises.mkdir(this.dir, { recursive: true });
      await writeFileAtomicAsync(this.file(hash), image.serialize());
    } catch {
      // a cache: without the image the next write of this catalog is a full build
    }
  }

  remove(hash: string): void {
    fs.rmSync(this.file(hash), { force: true });
  }

  /**
   * The previous catalog `hash` of `size` bytes uncompressed (checked against its hash, inflated on
   * the thread pool) with its image; undefined when there is no usable image or the object cannot
   * be read.
   */
  async loadBase(store: ObjectStore, hash: string, size: number): Promise<CatalogBase | undefined> {
    try {
      const image = RowImage.parse(fs.readFileSync(this.file(hash)));
      if (!image) return undefined;
      const compressed = store.readCompressed(hash, 'C');
      if (sha1Hex(compressed) !== hash) return undefined;
      // one output buffer of the whole size: the inflate runs as one job, not one round trip to the
      // main thread (busy building rows) per 16 KiB
      return { db: await inflate(compressed, { chunkSize: Math.max(64 << 10, size) }), image };
    } catch {
      return undefined;
    }
  }

  /** Remove the images of catalogs not in `keep` (and temp files); returns how many went. */
  prune(keep: Set<string>): number {
    if (!fs.existsSync(this.dir)) return 0;
    let n = 0;
    for (const f of fs.readdirSync(this.dir)) {
      if (keep.has(objectPath(f, 'C'))) continue;
      fs.rmSync(path.join(this.dir, f), { force: true });
      n++;
    }
    return n;
  }

  /** Remove images a killed writer left half-written. */
  removeTemp(): number {
    if (!fs.existsSync(this.dir)) return 0;
    let n = 0;
    for (const f of fs.readdirSync(this.dir)) {
      if (!f.endsWith('.tmp')) continue;
      fs.rmSync(path.join(this.dir, f), { force: true });
      n++;
    }
    return n;
  }
}
