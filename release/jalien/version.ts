/** JAliEn version rules (JAliEn CVMFS.java / alidist jalien.sh): `2.1.3-1` = tag + build number. */
import { UsageError } from '../../base/errors.ts';

export const JALIEN_VERSION_RE = /^[1-2]\..*-[0-9]+$/;
/** Characters allowed on top of the rule, so a version is also a safe path component and Tcl word. */
const SAFE = /^[A-Za-z0-9._+-]+$/;

export function validateJalienVersion(version: string, where = 'version'): string {
  if (!JALIEN_VERSION_RE.test(version) || !SAFE.test(version)) {
    throw new UsageError(`"${version}" is not a JAliEn version`, {
      where,
      hint: 'use <major>.<minor>.<patch>-<build> matching ^[1-2]\\..*-[0-9]+$ (letters, digits, ".", "_", "+", "-"), e.g. 2.1.10-1',
    });
  }
  return version;
}

export function validateArch(arch: string, where = '--arch'): string {
  if (!/^[a-z0-9][a-z0-9_]*-[a-z0-9_]+$/.test(arch)) {
    throw new UsageError(`"${arch}" is not a platform directory name`, { where, hint: 'use <os>-<cpu>, e.g. el9-x86_64' });
  }
  return arch;
}
