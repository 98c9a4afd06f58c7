/**
 * The `repository` section of the project config (`gridforge.yaml`): where the repository lives,
 * its name and its keys directory. The CLI composes it with the other sections
 * (scripts/cli/project-config.ts); `repo` and `release` commands read the result.
 */
import path from 'node:path';
import { z } from 'zod';

export const RepositorySchema = z
  .object({
    /** Repository directory (relative to the config file). */
    dir: z.string().min(1),
    /** Repository name, e.g. alice.cern.ch. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'expected a repository name like alice.cern.ch'),
    /** Folder with the repository's master key, certificate and keys (relative to the config file). */
    keys: z.string().min(1),
  })
  .strict();

/** Used when the config has no `repository` section. */
export const DEFAULT_REPOSITORY: z.infer<typeof RepositorySchema> = { dir: '.gridforge/repo', name: 'alice.gridforge.local', keys: '.gridforge/keys' };

/** The repository section with `dir` and `keys` absolute. */
export type RepositoryConfig = z.infer<typeof RepositorySchema>;

/** Resolve the section's paths against the config file's folder. */
export function resolveRepository(raw: RepositoryConfig, root: string): RepositoryConfig {
  return { dir: path.resolve(root, raw.dir), name: raw.name, keys: path.resolve(root, raw.keys) };
}
