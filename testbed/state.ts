/**
 * The testbed's state file: everything `testbed up` creates is written down BEFORE it is created
 * (bridge, namespaces, links, processes' cgroups, the repository server), so `testbed down` can
 * remove all of it even after `testbed up` crashed or was killed half way.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../base/safe-fs.ts';

export type HostRole = 'controller' | 'worker' | 'vobox';

export interface HostRecord {
  name: string;
  role: HostRole;
  /** network namespace, also the name of the host's cgroup in every v1 hierarchy */
  netns: string;
  /** the machine's end of the host's veth pair */
  veth: string;
  address: string;
  holderPid?: number;
}

export interface TestbedState {
  prefix: string;
  dir: string;
  phase: 'starting' | 'up' | 'failed';
  bridge?: string;
  subnet?: string;
  gateway?: string;
  hosts: HostRecord[];
  /** true when `up` created the empty /cvmfs directory of the machine (removed again by down) */
  createdCvmfsDir?: boolean;
  repo?: { dir: string; name: string; tag?: string; url?: string; servePid?: number; mode?: 'cvmfs2' | 'checkout'; checkout?: string; publicKey?: string };
  slurm?: { conf: string; mungeKey: string; cluster: string; partition: string };
  /** the deployed VO-box container (absent: the CE submitter runs in the VO-box host itself) */
  vobox?: { container: string; socket: string; image: string };
  /** the site file's elastic: block when up ran with --elastic (testbed/elastic.ts) */
  elastic?: Record<string, unknown>;
  startedAt?: string;
  error?: string;
}

export const DEFAULT_PREFIX = 'gftb';

/**
 * Where the testbed with this prefix keeps its state and files (GRIDFORGE_TESTBED_DIR overrides the
 * parent). Memory (/dev/shm) by default: the files are the VO-box host's image store and the
 * repository checkout, gone with the testbed anyway, and deleting them from a disk mounted with
 * `discard` took ~25 s of `testbed down` (400 MB) against well under a second here.
 */
export function testbedDir(prefix: string): string {
  return join(process.env.GRIDFORGE_TESTBED_DIR ?? '/dev/shm/gridforge-testbed', prefix);
}

export function statePath(dir: string): string {
  return join(dir, 'state.json');
}

export function readState(dir: string): TestbedState | undefined {
  const p = statePath(dir);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as TestbedState;
  } catch {
    return undefined;
  }
}

export function saveState(state: TestbedState): void {
  mkdirSync(state.dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(statePath(state.dir), `${JSON.stringify(state, null, 2)}\n`);
}
