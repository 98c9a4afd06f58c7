/**
 * `release java32` as one call: assemble the runtime in a private temporary work directory
 * (./assemble.ts), publish it (./publish.ts), and remove the work directory whatever happens.
 * Used by `gridforge release java32` and by the `release --from-git` workflow (../from-git.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleJava32, discardAssembly, type AssembledRuntime } from './assemble.ts';
import { publishJava32, type PublishJava32Result } from './publish.ts';

export interface ReleaseJava32Options {
  jdk: string;
  libs: string[];
  mountPrefix: string;
  jdkVersion?: string;
  cacerts?: string;
  arch: string;
  latest?: boolean;
  force?: boolean;
  tag?: string;
  onProgress?: (msg: string) => void;
}

export interface ReleaseJava32Result {
  runtime: AssembledRuntime;
  publish: PublishJava32Result;
}

/** Assemble and publish the 32-bit Java runtime into the repository at `repoDir`. */
export async function releaseJava32(repoDir: string, o: ReleaseJava32Options): Promise<ReleaseJava32Result> {
  const work = await mkdtemp(join(tmpdir(), 'gridforge-java32-'));
  try {
    const runtime = await assembleJava32({ jdk: o.jdk, libs: o.libs, mountPrefix: o.mountPrefix, workDir: work, jdkVersion: o.jdkVersion, cacerts: o.cacerts, onProgress: o.onProgress });
    const publish = await publishJava32(repoDir, runtime, { arch: o.arch, makeLatest: o.latest, force: o.force, tag: o.tag, onProgress: o.onProgress });
    await discardAssembly(runtime);
    return { runtime, publish };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
