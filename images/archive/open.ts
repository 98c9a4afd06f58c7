/** One entry point for every image input: engine reference, docker-save/OCI archive, OCI layout dir. */
import fs from 'node:fs';
import { UsageError } from '../../base/errors.ts';
import { openDockerArchive } from './docker-archive.ts';
import { openEngineImage } from './engine.ts';
import { isOciLayout, openOciLayout } from './oci-layout.ts';
import type { ImageSource } from './image-source.ts';

export async function openImageSource(source: string, opts: { tmpDir?: string; onFallback?: (why: string) => void } = {}): Promise<ImageSource> {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(source);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) {
    if (!isOciLayout(source)) throw new UsageError('directory is not an OCI image layout (no oci-layout / index.json)', { where: source, hint: 'Pass an OCI layout directory, a docker-save archive or an engine image reference.' });
    return openOciLayout(source);
  }
  if (st?.isFile()) return openDockerArchive(source);
  if (st) throw new UsageError('is neither a regular file nor a directory', { where: source, hint: 'Pass a docker-save archive file, an OCI layout directory or an engine image reference.' });
  if (source.startsWith('/') || source.startsWith('./') || source.endsWith('.tar')) {
    throw new UsageError('no such file or directory', { where: source, hint: 'Check the path, or pass an engine image reference.' });
  }
  return openEngineImage(source, opts);
}
