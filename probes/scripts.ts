/**
 * Where the probe scripts live and which ones there are: the Site Sonar probe directory gridforge
 * ships (`probes/sitesonar.d/`, published to `sitesonar/sitesonar.d` in the repository, the path
 * the JobAgent runs them from: JAliEn alien/site/CVMFS.java getSiteSonarProbeDirectory), the probe
 * names in a directory, and a content version of a probe set.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../base/errors.ts';
import { readBoundedFile } from '../base/safe-fs.ts';

/** The probes gridforge owns (realpath: the compiled build links this directory to its source). */
export function bundledProbesDir(): string {
  return fs.realpathSync(fileURLToPath(new URL('./sitesonar.d/', import.meta.url)));
}

/** Where the probes sit in the repository (and below a CernVM-FS mount of it). */
export const SITESONAR_PATH = 'sitesonar/sitesonar.d';

/** The probes every node should run (the list; readiness uses os, cpu, userns, container, cvmfs). */
export const STANDARD_PROBES = ['os', 'cpu', 'memory', 'scratch', 'userns', 'container', 'cvmfs', 'gpu', 'network'] as const;

/** A probe name: what the JobAgent and the results store key on. */
export const PROBE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Probe names (`<name>.sh` regular files) in a directory, sorted. UsageError when there are none. */
export function listProbes(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw new UsageError(`cannot read the probe directory ${dir}: ${(err as Error).message}`, { where: dir, hint: 'give a directory holding <probe>.sh files (e.g. a checkout of sitesonar/sitesonar.d)' });
  }
  const probes = names
    .filter((n) => n.endsWith('.sh') && PROBE_NAME.test(n.slice(0, -3)))
    .filter((n) => fs.statSync(path.join(dir, n)).isFile())
    .map((n) => n.slice(0, -3))
    .sort();
  if (probes.length === 0) throw new UsageError(`no probes (<name>.sh) in ${dir}`, { where: dir, hint: 'point at the sitesonar.d directory (published with `gridforge probe publish`)' });
  return probes;
}

/** Every file of a probe directory (relative paths, sorted): the probes and what they source (lib/). */
export function probeFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk('');
  return out;
}

/** A short content version of a probe set: SHA-256 over every file's name and bytes, 12 hex digits. */
export function probesVersion(dir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of probeFiles(dir)) h.update(f).update('\0').update(readBoundedFile(path.join(dir, f), f, 1024 * 1024)).update('\0');
  return h.digest('hex').slice(0, 12);
}
