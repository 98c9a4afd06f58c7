/**
 * `.cvmfswhitelist` (whitelist.cc): issue time (YYYYMMDDhhmmss UTC), `E` expiry, `N` name, the
 * certificate fingerprint, `--`, SHA-1 hex of that block, newline, raw RSA PKCS#1 signature (no
 * DigestInfo) of the hex text by the master key.
 */
import { createHash, privateEncrypt, publicDecrypt, constants, type KeyObject } from 'node:crypto';
import { splitSigned } from './manifest.ts';

export const WHITELIST_DAYS = 30;
/** `repo verify` warns this long before the whitelist expires (renew with `repo resign`, cvmfs-publish/resign.ts). */
export const WHITELIST_WARN_HOURS = 48;

export function stamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

export function parseStamp(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) throw new Error(`bad timestamp "${s}"`);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

export function signWhitelist(opts: { name: string; fingerprint: string; masterKey: KeyObject; issued?: Date; expires?: Date }): Buffer {
  const issued = opts.issued ?? new Date();
  const expires = opts.expires ?? new Date(issued.getTime() + WHITELIST_DAYS * 86400_000);
  const body = `${stamp(issued)}\nE${stamp(expires)}\nN${opts.name}\n${opts.fingerprint}\n`;
  const hex = createHash('sha1').update(body).digest('hex');
  const sig = privateEncrypt({ key: opts.masterKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(hex));
  return Buffer.concat([Buffer.from(`${body}--\n${hex}\n`), sig]);
}

export interface WhitelistInfo {
  issued: Date;
  expires: Date;
  name: string;
  fingerprints: string[];
}

/** Parse and check a whitelist; returns its info and the list of problems (empty when valid). */
export function checkWhitelist(raw: Buffer, masterPub: KeyObject | undefined, now = new Date()): { info?: WhitelistInfo; problems: string[] } {
  const problems: string[] = [];
  let signed;
  try {
    signed = splitSigned(raw, '.cvmfswhitelist');
  } catch (err) {
    return { problems: [(err as Error).message] };
  }
  const lines = signed.body.toString('utf8').split('\n').filter((l) => l.length > 0);
  let info: WhitelistInfo | undefined;
  try {
    info = {
      issued: parseStamp(lines[0]),
      expires: parseStamp((lines.find((l) => l.startsWith('E')) ?? 'E').slice(1)),
      name: (lines.find((l) => l.startsWith('N')) ?? 'N').slice(1),
      fingerprints: lines.filter((l) => /^[0-9A-F]{2}(:[0-9A-F]{2}){19}/.test(l)).map((l) => l.split(' ')[0]),
    };
  } catch (err) {
    problems.push(`malformed: ${(err as Error).message}`);
  }
  const actual = createHash('sha1').update(signed.body).digest('hex');
  if (actual !== signed.hashHex) problems.push(`field block hash ${actual} does not match the signed hash ${signed.hashHex}`);
  if (masterPub) {
    try {
      const dec = publicDecrypt({ key: masterPub, padding: constants.RSA_PKCS1_PADDING }, signed.signature).toString('latin1');
      if (dec !== signed.hashHex) problems.push('signature does not match the master key');
    } catch {
      problems.push('signature does not verify with the master public key');
    }
  } else problems.push('no master public key to check the signature');
  if (info && info.expires.getTime() <= now.getTime()) problems.push(`expired at ${info.expires.toISOString()}`);
  return { info, problems };
}

/** A warning when a still-valid whitelist expires within WHITELIST_WARN_HOURS of `now`, else undefined. */
export function expiryWarning(info: WhitelistInfo, now = new Date()): string | undefined {
  const left = info.expires.getTime() - now.getTime();
  if (left <= 0 || left > WHITELIST_WARN_HOURS * 3600_000) return undefined;
  return `expires in ${(left / 3600_000).toFixed(1)} hours (${info.expires.toISOString()}): clients stop mounting the repository then; run \`gridforge repo resign\` (or publish), and schedule it (repo init prints the cron line)`;
}
