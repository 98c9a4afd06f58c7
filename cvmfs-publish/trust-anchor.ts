/**
 * Which master public key a LOCAL repository directory is checked against when no key is given.
 * The repository itself is not a trust anchor: whoever hands over a repository directory writes
 * its `.gridforge/config.json` and everything inside it, so a key the config names inside the
 * repository (directly or through a symlink) would let them sign anything. Candidates, in order:
 * 1. the keys directory `.gridforge/config.json` records (what `repo init --keys` wrote), and
 * 2. the keys directory beside the repository, `<repo-dir>.keys/` (the `repo init` default),
 *    each only when its `<fqrn>.pub` lies outside the repository and the file and its directory
 *    belong to the caller (or root) and are not writable by group or others;
 * 3. `/etc/cvmfs/keys/<fqrn>.pub`, where a cvmfs client site keeps its keys.
 * Otherwise the caller passes the key (`--public-key`). Documented in cvmfs-publish/README.md.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { effectiveUid as euid, readBoundedFile } from '../base/safe-fs.ts';
import { defaultKeysDir, keyFiles } from './keys.ts';

export const SYSTEM_KEYS_DIR = '/etc/cvmfs/keys';
const FQRN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

export interface TrustAnchor {
  key: KeyObject;
  /** the public key file it came from */
  file: string;
}

export interface AnchorSearch {
  anchor?: TrustAnchor;
  /** why each candidate that exists was not trusted */
  refused: string[];
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Why the caller cannot trust `st` (a key file or its directory), or undefined. */
function ownershipProblem(st: fs.Stats, what: string): string | undefined {
  if (st.uid !== euid() && st.uid !== 0) return `${what} belongs to uid ${st.uid}, not to you (uid ${euid()}) or root`;
  if (st.mode & 0o022) return `${what} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/** Check one candidate key file; undefined when it does not exist. */
function candidate(file: string, repoReal: string, origin: string): { anchor?: TrustAnchor; refused?: string } {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return {};
  }
  if (isInside(real, repoReal)) {
    return { refused: `${origin} names the master key ${file}, which lies inside the repository (${real}); whoever hands over the repository controls it` };
  }
  const problem = ownershipProblem(fs.statSync(real), real) ?? ownershipProblem(fs.statSync(path.dirname(real)), path.dirname(real));
  if (problem) return { refused: `${origin}: ${problem}` };
  try {
    return { anchor: { key: createPublicKey(readBoundedFile(real, real, 64 * 1024)), file: real } };
  } catch (err) {
    return { refused: `${origin}: ${real} is not a public key (${(err as Error).message})` };
  }
}

/** The keys directory and name `.gridforge/config.json` records, when it is readable. */
function configKeyFile(repoDir: string): string | undefined {
  const cfgFile = path.join(repoDir, '.gridforge', 'config.json');
  if (!fs.existsSync(cfgFile)) return undefined;
  try {
    const cfg = JSON.parse(readBoundedFile(cfgFile, cfgFile, 1024 * 1024).toString('utf8')) as { name?: unknown; keysDir?: unknown };
    if (typeof cfg.name !== 'string' || !FQRN_RE.test(cfg.name) || typeof cfg.keysDir !== 'string' || !path.isAbsolute(cfg.keysDir)) return undefined;
    return keyFiles(cfg.keysDir, cfg.name).masterPub;
  } catch {
    return undefined;
  }
}

/** Find the master public key to check the local repository `repoDir` (manifest name `fqrn`) against. */
export function findTrustAnchor(repoDir: string, fqrn: string): AnchorSearch {
  const refused: string[] = [];
  let repoReal: string;
  try {
    repoReal = fs.realpathSync(repoDir);
  } catch {
    return { refused };
  }
  const cands: [string, string][] = [];
  const fromConfig = configKeyFile(repoReal);
  if (fromConfig) cands.push([fromConfig, `${path.join(repoDir, '.gridforge', 'config.json')}`]);
  if (FQRN_RE.test(fqrn)) {
    cands.push([keyFiles(defaultKeysDir(repoDir), fqrn).masterPub, 'the keys directory beside the repository']);
    cands.push([path.join(SYSTEM_KEYS_DIR, `${fqrn}.pub`), SYSTEM_KEYS_DIR]);
  }
  for (const [file, origin] of cands) {
    const c = candidate(file, repoReal, origin);
    if (c.anchor) return { anchor: c.anchor, refused };
    if (c.refused) refused.push(c.refused);
  }
  return { refused };
}

/** The sentence a missing anchor error ends with. */
export function anchorHint(fqrn: string): string {
  return `pass --public-key <file> (the repository's master public key ${fqrn}.pub, obtained from its publisher), or keep it in <repo-dir>.keys/ or ${SYSTEM_KEYS_DIR}/`;
}
