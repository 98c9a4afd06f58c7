/**
 * `repo resign`: re-sign `.cvmfswhitelist` with the master key without a publish, as
 * `cvmfs_server resign` does (cvmfs/server/cvmfs_server_resign.sh, create_whitelist in
 * cvmfs_server_ssl.sh). A whitelist is valid 30 days and only a publish renews it, so a repository
 * nobody publishes to stops mounting everywhere after a month; `repo init` prints the cron line
 * (`resignCronLine`) that keeps it alive. Holds the repository lock; the whitelist is replaced by
 * rename (base/safe-fs.ts); it lists the certificate the current manifest names.
 */
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { shellWord } from '../base/shell-quote.ts';
import { acquireRecovering } from './abort.ts';
import { objectPath } from './format.ts';
import { certFingerprint } from './keys.ts';
import { ObjectStore, verifyAndInflate } from './object-store.ts';
import { finishPending, loadRepoKeys, readHead, readRepoConfig, writeAtomic } from './repository.ts';
import { signWhitelist } from './whitelist.ts';

/** Longest whitelist `--days` accepts: cvmfs_server asks for confirmation above 30 (a longer window for a stolen repository key). */
export const MAX_WHITELIST_DAYS = 366;

export interface ResignResult {
  name: string;
  whitelist: string;
  days: number;
  issued: string;
  expires: string;
}

export function resignWhitelist(repoDir: string, opts: { days?: number } = {}): ResignResult {
  const dir = path.resolve(repoDir);
  const cfg = readRepoConfig(dir);
  const days = opts.days ?? cfg.whitelistDays;
  if (!Number.isInteger(days) || days < 1 || days > MAX_WHITELIST_DAYS) {
    throw new UsageError(`whitelist validity of ${days} days is out of range`, { where: '--days', hint: `give a whole number of days from 1 to ${MAX_WHITELIST_DAYS} (default ${cfg.whitelistDays}, cvmfs_server's 30)` });
  }
  const { lock } = acquireRecovering(dir, 'resign');
  try {
    finishPending(dir);
    const { manifest } = readHead(dir);
    const keys = loadRepoKeys(dir, cfg);
    const rel = objectPath(manifest.certificate, 'X');
    const cert = new X509Certificate(verifyAndInflate(new ObjectStore(dir).readCompressed(manifest.certificate, 'X'), manifest.certificate, rel));
    const issued = new Date();
    const expires = new Date(issued.getTime() + days * 86400_000);
    const file = path.join(dir, '.cvmfswhitelist');
    writeAtomic(file, signWhitelist({ name: cfg.name, fingerprint: certFingerprint(cert), masterKey: keys.masterKey, issued, expires }));
    return { name: cfg.name, whitelist: file, days, issued: issued.toISOString(), expires: expires.toISOString() };
  } finally {
    lock.release();
  }
}

/** The crontab line that re-signs the whitelist every Monday at 04:00 (`%` escaped for cron). */
export function resignCronLine(repoDir: string): string {
  return `0 4 * * 1 gridforge repo resign ${shellWord(path.resolve(repoDir)).replace(/%/g, '\\%')}`;
}
