/**
 * The repository's secret chunk key, `<repo>/.gridforge/chunk-key` (32 random bytes, mode 0600;
 * gridforge state, never served: serve.ts): the key of the chunk digests (chunk-store.mjs
 * digestOf), which must not be known to whoever writes the content being published. Made at the
 * first chunked publish; a missing or damaged key is made anew, and the chunk cache made under the
 * old one is dropped (its id no longer matches: chunk-cache.ts), which costs recompression only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readBoundedFile, writeFileAtomic } from '../base/safe-fs.ts';

const KEY_BYTES = 32;

export interface ChunkKey {
  key: Buffer;
  /** Names the key without revealing it (recorded in the chunk cache). */
  id: string;
}

function keyOf(key: Buffer): ChunkKey {
  return { key, id: crypto.createHash('sha256').update('gridforge chunk key\0').update(key).digest('hex').slice(0, 16) };
}

export function chunkKeyAt(repoDir: string): ChunkKey {
  const file = path.join(repoDir, '.gridforge', 'chunk-key');
  try {
    const key = readBoundedFile(file, file, KEY_BYTES);
    if (key.length === KEY_BYTES) return keyOf(key);
  } catch {
    // missing or not a plain file: made anew below
  }
  const key = crypto.randomBytes(KEY_BYTES);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, key, { mode: 0o600 });
  return keyOf(key);
}
