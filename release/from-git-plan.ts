/**
 * The plan of `gridforge release --from-git`: the exact release tag on HEAD (validated as a JAliEn
 * version), the ordered steps (images, sandboxes, Java runtime, JAliEn as default + repository tag)
 * and step error wrapping. The workflow that runs the plan is ./from-git.ts.
 */
import { execa } from 'execa';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { JALIEN_VERSION_RE, validateJalienVersion } from './jalien/version.ts';
import { defaultFilePath, modulefilePath, packageDir } from './jalien/content.ts';

export interface GitRelease {
  version: string;
  commit: string;
  tags: string[];
}

/** The exact release tag on HEAD of the git work tree at `cwd`. */
export async function releaseTagOnHead(cwd: string): Promise<GitRelease> {
  const git = (args: string[]) => execa('git', ['-C', cwd, ...args], { reject: false });
  const head = await git(['rev-parse', '--verify', 'HEAD']);
  if (head.exitCode !== 0) {
    throw new UsageError(`${cwd} is not a git work tree with a commit`, { where: cwd, hint: 'run it in the release repository checkout (CI checks out the tagged commit)' });
  }
  const commit = head.stdout.trim();
  const described = await git(['describe', '--exact-match', '--tags', 'HEAD']);
  const pointing = (await git(['tag', '--points-at', 'HEAD'])).stdout.split('\n').map((t) => t.trim()).filter(Boolean);
  const tags = [...new Set([...(described.exitCode === 0 ? [described.stdout.trim()] : []), ...pointing])];
  if (!tags.length) {
    throw new UsageError(`HEAD (${commit.slice(0, 12)}) is not tagged, so there is no version to release`, {
      where: cwd,
      hint: 'tag the commit with the JAliEn version and push the tag (git tag 2.1.4-1 && git push --tags); CI runs the release on tag pushes',
    });
  }
  const versions = tags.filter((t) => JALIEN_VERSION_RE.test(t));
  if (!versions.length) {
    throw new UsageError(`the tag(s) on HEAD (${tags.join(', ')}) are not JAliEn versions`, {
      where: `${cwd}: tag ${tags[0]}`,
      hint: 'release tags look like 2.1.4-1 (^[1-2]\\..*-[0-9]+$)',
    });
  }
  if (versions.length > 1) {
    throw new UsageError(`HEAD carries several release tags (${versions.join(', ')})`, { where: cwd, hint: 'keep one version tag per commit (git tag -d <tag>)' });
  }
  return { version: validateJalienVersion(versions[0], `tag ${versions[0]}`), commit, tags };
}

export interface ReleasePlanInput {
  git: GitRelease;
  repoDir: string;
  arch: string;
  jars: string[];
  images: { name: string; kind: 'vobox' | 'job'; ref: string }[];
  sandboxes: string[];
  java32?: { jdk: string; libs: string[]; mountPrefix: string };
}

export interface ReleaseStep {
  step: 'image' | 'sandbox' | 'java32' | 'jalien';
  what: string;
  target: string;
}

export interface ReleasePlan {
  version: string;
  commit: string;
  repoDir: string;
  arch: string;
  tag: string;
  steps: ReleaseStep[];
}

export function planRelease(input: ReleasePlanInput): ReleasePlan {
  const v = input.git.version;
  const steps: ReleaseStep[] = [];
  for (const img of input.images) steps.push({ step: 'image', what: `build + flatten ${img.name}`, target: img.ref });
  for (const s of input.sandboxes) steps.push({ step: 'sandbox', what: `sandbox of ${s}`, target: `containers/fs/singularity/${s}-${v}` });
  if (input.java32) steps.push({ step: 'java32', what: `Java runtime from ${input.java32.jdk} (mount prefix ${input.java32.mountPrefix})`, target: 'java/JDKs/i686/jdk-<version>, jdk-latest' });
  steps.push({
    step: 'jalien',
    what: `JAliEn ${v} (${input.jars.map((j) => j.split('/').pop()).join(', ')}) as default, repository tag ${v}`,
    target: `${packageDir(input.arch, v)}, ${modulefilePath(input.arch, 'JAliEn', v)}, ${defaultFilePath(input.arch, 'JAliEn')}`,
  });
  return { version: v, commit: input.git.commit, repoDir: input.repoDir, arch: input.arch, tag: v, steps };
}

/** Run a step, naming it in the error when it fails. */
export async function runStep<T>(step: ReleaseStep, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof GridforgeError) {
      const Ctor = err instanceof UsageError ? UsageError : GridforgeError;
      throw new Ctor(`release step "${step.what}" failed: ${err.message}`, { where: err.where, hint: err.hint, detail: err.detail, cause: err });
    }
    throw new GridforgeError(`release step "${step.what}" failed: ${(err as Error).message ?? String(err)}`, { cause: err });
  }
}
