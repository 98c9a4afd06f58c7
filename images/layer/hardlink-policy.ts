/**
 * What to do with a hard link entry whose target does not exist when its layer is applied (the
 * target was never in the image, or an earlier layer's whiteout removed it). Docker refuses such a
 * layer; some images in the wild carry them all the same (mostly forgotten package-manager caches),
 * and cvmfs's tar ingest materialises them as empty files (cvmfs/cvmfs pull request 4286,
 * "Ignore missing hardlink targets when ingesting container layers"). Policies:
 * - `refuse` (default): a UsageError naming the layer and the entry, and the flag that changes it;
 * - `empty`: an empty regular file with the entry's own metadata, and one warning per entry.
 * The flag is `--missing-hardlink-target <refuse|empty>` (image flatten / sandbox / sync) and the
 * wish-list key `missingHardlinkTarget`.
 */
import { UsageError } from '../../base/errors.ts';

export const MISSING_HARDLINK_POLICIES = ['refuse', 'empty'] as const;
export type MissingHardlinkTarget = (typeof MISSING_HARDLINK_POLICIES)[number];
export const MISSING_HARDLINK_FLAG = '--missing-hardlink-target';

/** Check a policy given as text (CLI flag, wish list); `where` names the flag or key. */
export function parseMissingHardlinkTarget(value: string, where: string): MissingHardlinkTarget {
  if ((MISSING_HARDLINK_POLICIES as readonly string[]).includes(value)) return value as MissingHardlinkTarget;
  throw new UsageError(`${JSON.stringify(value)} is not a policy for hard links whose target is missing`, { where, hint: `Use ${MISSING_HARDLINK_POLICIES.join(' or ')}.` });
}

/** The refusal: names the entry (where = "<layer>: <entry>"), the target and the way out. */
export function missingTargetError(linkname: string, where: string): UsageError {
  return new UsageError(`hardlink target ${JSON.stringify(linkname)} does not exist inside the image`, {
    where,
    hint: `The layer links to a file that no earlier entry created (or a whiteout removed). Rebuild the image, or pass ${MISSING_HARDLINK_FLAG} empty (wish list: missingHardlinkTarget: empty) to write an empty file with the entry's own metadata instead.`,
  });
}

/** The warning of the `empty` policy, one per entry. */
export function missingTargetWarning(linkname: string, where: string): string {
  return `${where}: hardlink target ${JSON.stringify(linkname)} does not exist inside the image; written as an empty file (${MISSING_HARDLINK_FLAG} empty)`;
}
