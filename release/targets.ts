/**
 * Where a release goes, from the command line first and the project config second: the
 * repository directory (must already be a repository), the platform directory (`el9-x86_64`) and
 * the prefix worker nodes mount the repository at (default `/cvmfs/<repository name>`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../base/errors.ts';
import { readRepoConfig } from '../cvmfs-publish/index.ts';
import type { RepositoryConfig } from '../cvmfs-publish/repository-config.ts';
import type { ReleaseConfig } from './config.ts';

/** The config sections a release reads (scripts/cli/project-config.ts ProjectConfig has them). */
export interface ReleaseTargetsConfig {
  repository: RepositoryConfig;
  release: ReleaseConfig;
}

/** The repository directory: `--repo`, else repository.dir; it must hold a published repository. */
export function repoDirOf(explicit: string | undefined, cfg?: ReleaseTargetsConfig): string {
  const dir = explicit ?? cfg?.repository.dir;
  if (!dir) throw new UsageError('no repository given', { where: '--repo', hint: 'pass --repo <repo-dir> (or set repository.dir in gridforge.yaml)' });
  if (!existsSync(join(dir, '.cvmfspublished'))) {
    throw new UsageError(`${dir} is not a repository`, { where: `--repo ${dir}`, hint: 'create it with `gridforge repo init <dir> --name <fqrn>`' });
  }
  return resolve(dir);
}

/** The platform directory: `--arch`, else release.jalien.arch, else el9-x86_64. */
export function archOf(explicit: string | undefined, cfg?: ReleaseTargetsConfig): string {
  return explicit ?? cfg?.release.jalien.arch ?? 'el9-x86_64';
}

/** The mount prefix: `--mount-prefix`, else release.java32.mountPrefix, else /cvmfs/<repository name>. */
export function mountPrefixOf(explicit: string | undefined, repoDir: string, cfg?: ReleaseTargetsConfig): string {
  return explicit ?? cfg?.release.java32?.mountPrefix ?? `/cvmfs/${readRepoConfig(repoDir).name}`;
}
