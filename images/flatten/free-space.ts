/** Bound output size against free disk (rather than trusting a compression ratio). */
import fs from 'node:fs';
import { UsageError } from '../../base/errors.ts';

export function checkFreeSpace(dir: string, needBytes: number, where: string, needInodes = 0): void {
  let st: fs.StatsFs;
  try {
    st = fs.statfsSync(dir);
  } catch {
    throw new UsageError(`output directory ${dir} does not exist`, { where, hint: 'Create the parent directory first.' });
  }
  const free = st.bavail * st.bsize;
  const margin = 64 * 1024 * 1024;
  if (needBytes + margin > free) {
    throw new UsageError(`needs ${(needBytes / 1048576).toFixed(0)} MiB but only ${(free / 1048576).toFixed(0)} MiB are free`, { where, hint: 'Free disk space or write elsewhere; an image this large may be a decompression bomb.' });
  }
  if (needInodes && st.files > 0 && needInodes > st.ffree) {
    throw new UsageError(`needs ${needInodes} inodes but only ${st.ffree} are free`, { where, hint: 'Free inodes or write elsewhere.' });
  }
}
