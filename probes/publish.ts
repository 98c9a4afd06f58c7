/**
 * `gridforge probe publish`: the probe scripts into the repository as one versioned tree at
 * `sitesonar/sitesonar.d` (one revision, tagged `sitesonar-<version>` unless told otherwise), so a
 * probe change is tagged, diffed and rolled back like any other tree (cvmfs-publish/README.md).
 */
import * as path from 'node:path';
import { readBoundedFile } from '../base/safe-fs.ts';
import { listTags, openTransaction } from '../cvmfs-publish/index.ts';
import { bundledProbesDir, listProbes, probeFiles, probesVersion, SITESONAR_PATH } from './scripts.ts';

export interface PublishProbesOptions {
  /** Another probe directory (default: the probes gridforge ships, probes/sitesonar.d). */
  probesDir?: string;
  tag?: string;
  message?: string;
  onProgress?: (line: string) => void;
}

export interface PublishProbesResult {
  path: string;
  revision: number;
  tag?: string;
  version: string;
  probes: string[];
  files: number;
}

export async function publishProbes(repoDir: string, opts: PublishProbesOptions = {}): Promise<PublishProbesResult> {
  const dir = opts.probesDir ?? bundledProbesDir();
  const probes = listProbes(dir);
  const version = probesVersion(dir);
  const files = probeFiles(dir);
  const contents = files.map((f) => ({ f, data: readBoundedFile(path.join(dir, f), f, 1024 * 1024) }));
  const defaultTag = `sitesonar-${version}`;
  const tag = opts.tag ?? (listTags(repoDir).some((t) => t.name === defaultTag) ? undefined : defaultTag);
  const tx = openTransaction(repoDir, { operation: `publish ${SITESONAR_PATH}`, onProgress: opts.onProgress });
  try {
    const mtime = Math.floor(Date.now() / 1000);
    const dirMeta = { mode: 0o755, uid: 0, gid: 0, mtime };
    if (tx.exists(SITESONAR_PATH)) await tx.remove(SITESONAR_PATH);
    await tx.mkdir(SITESONAR_PATH, dirMeta);
    for (const { f, data } of contents) {
      if (f.includes('/')) await tx.mkdir(`${SITESONAR_PATH}/${path.posix.dirname(f)}`, dirMeta);
      await tx.putFile(`${SITESONAR_PATH}/${f}`, data, { mode: f.endsWith('.sh') ? 0o755 : 0o644, uid: 0, gid: 0, mtime });
    }
    await tx.putFile(`${SITESONAR_PATH}/VERSION`, Buffer.from(`${version}\n`), { mode: 0o644, uid: 0, gid: 0, mtime });
    const r = await tx.commit({ tag, message: opts.message ?? `Site Sonar probes ${version}: ${probes.join(' ')}` });
    return { path: SITESONAR_PATH, revision: r.revision, tag, version, probes, files: files.length + 1 };
  } finally {
    await tx.abort();
  }
}
