/**
 * The command groups: name, one-line summary, and how to load the module that registers it. The
 * summary is written here once; each group's `register` uses it, and `gridforge --help` lists
 * the groups from this table alone, without loading any group (they pull in the capability
 * libraries, which is most of the start time).
 */
import type { Command } from 'commander';

export interface Group {
  register(program: Command): void;
}

export const GROUPS = {
  image: { summary: 'render, build, flatten, push and sync images (docker:// registries); write Apptainer sandboxes', load: () => import('./image.ts') },
  repo: { summary: 'publish into and read a CernVM-FS repository (Stratum-0 storage)', load: () => import('./repo.ts') },
  release: {
    summary: 'publish JAliEn releases, the 32-bit Java runtime and module defaults; `release --from-git` runs the whole release for the tag on HEAD',
    load: () => import('./release.ts'),
  },
  render: { summary: 'render deployment files from a site file and gridforge.yaml', load: () => import('./render.ts') },
  site: { summary: 'Deploy a VO-box to a Docker host over SSH from a site file (sites/<name>.yaml).', load: () => import('./site.ts') },
  rollout: {
    summary: 'Roll a new VO-box image or JAliEn version out to many sites: canary first, then waves; each site must pass its health gate or is rolled back',
    load: () => import('./rollout.ts'),
  },
  fleet: { summary: 'Look at many sites at once', load: () => import('./fleet.ts') },
  testbed: { summary: 'a local ALICE site on this machine (Slurm, worker nodes, VO-box, /cvmfs) and smoke jobs through it', load: () => import('./testbed.ts') },
  probe: { summary: 'Site Sonar worker-node probes: publish into the repository, run on a node, collect uploads, report per site and CE', load: () => import('./probe.ts') },
  elastic: { summary: "elastic worker nodes on Slurm's cloud scheduling: Resume/SuspendProgram, status, reap", load: () => import('./elastic.ts') },
  migrate: { summary: 'OS migration: which nodes and sites can run a job image, from the probe results', load: () => import('./migrate.ts') },
} satisfies Record<string, { summary: string; load: () => Promise<Group> }>;

export type GroupName = keyof typeof GROUPS;

/** The summary of a group, for its own `.description(...)`. */
export function summaryOf(name: GroupName): string {
  return GROUPS[name].summary;
}
