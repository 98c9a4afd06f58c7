/**
 * Publish on tag: `gridforge release --from-git`. Reads the exact tag on HEAD, checks the release
 * inputs of the project config (jars, images, sandboxes, Java runtime packages), plans the whole
 * release (./from-git-plan.ts) and, unless it is a dry run, runs it in this order:
 *
 *   1. build + flatten every release image with the version as tag component (images/build.ts)
 *   2. publish each job image's sandbox to containers/fs/singularity/<name>-<version>
 *      (release/sandbox-to-repo.ts)
 *   3. publish the Java runtime (when `release.java32` is configured; ./java32/)
 *   4. publish JAliEn <version> + modulefile and make it the default, tagging that revision with the
 *      version (so the tagged revision holds everything of the release; ./jalien/)
 *
 * A re-run with nothing new still ends with the version tag on the current revision.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../base/errors.ts';
import { listTags, tagRevision } from '../cvmfs-publish/index.ts';
import { buildImage } from '../images/build.ts';
import { getImage, imageRef, type ImagesConfig } from '../images/config.ts';
import { writeSandboxToRepository } from './sandbox-to-repo.ts';
import { planRelease, releaseTagOnHead, runStep, type ReleasePlan } from './from-git-plan.ts';
import { releaseJalien, setDefaultVersion, type ReleaseJalienResult } from './jalien/publish.ts';
import { releaseJava32 } from './java32/release-java32.ts';
import { archOf, mountPrefixOf, repoDirOf, type ReleaseTargetsConfig } from './targets.ts';

/** The project config as the release workflow needs it (scripts/cli/project-config.ts ProjectConfig). */
export type FromGitConfig = ImagesConfig & ReleaseTargetsConfig;

export interface FromGitOptions {
  /** Git work tree to read the tag from. */
  cwd: string;
  /** `--repo`, `--arch` (else the config's). */
  repo?: string;
  arch?: string;
  force?: boolean;
  /** Plan only; change nothing. */
  dryRun?: boolean;
  /**
   * Run before JAliEn becomes the default (`--smoke`): JAliEn is published as a candidate revision
   * tagged `<version>-candidate` without switching the default; this runs the smoke jobs against that
   * revision (testbed/, wired by scripts/cli/release.ts) and throws to stop the release there.
   */
  smoke?: (candidate: { version: string; tag: string; repoDir: string }) => Promise<void>;
  onProgress?: (msg: string) => void;
}

export interface FromGitResult {
  plan: ReleasePlan;
  /** Unset for a dry run. */
  results?: Record<string, unknown>[];
  jalien?: ReleaseJalienResult;
  tagged?: boolean;
}

type ReleaseImage = { name: string; kind: 'vobox' | 'job'; ref: string };

function releaseJars(cfg: FromGitConfig): string[] {
  const jars = (cfg.release.jalien.jars ?? []).map((j) => resolve(cfg.root, j));
  if (!jars.length) {
    throw new UsageError('no JAliEn jars configured for the release', { where: `${cfg.file}: release.jalien.jars`, hint: 'list the built jar(s), e.g. jars: [build/alien-users.jar]' });
  }
  for (const j of jars) if (!existsSync(j)) throw new UsageError(`jar ${j} does not exist`, { where: `${cfg.file}: release.jalien.jars`, hint: 'build JAliEn before releasing (CI: build job before the release job)' });
  return jars;
}

function releaseImages(cfg: FromGitConfig, version: string): { images: ReleaseImage[]; sandboxes: string[] } {
  const imageNames = cfg.release.jalien.images ?? Object.keys(cfg.images);
  const images = imageNames.map((n) => {
    const img = getImage(cfg, n);
    return { name: n, kind: img.kind, ref: imageRef(cfg, img, version) };
  });
  const sandboxes = cfg.release.jalien.sandboxes ?? images.filter((i) => i.kind === 'job').map((i) => i.name);
  for (const s of sandboxes) {
    if (!images.some((i) => i.name === s)) throw new UsageError(`sandbox image ${s} is not among the release images`, { where: `${cfg.file}: release.jalien.sandboxes`, hint: `add it to release.jalien.images (${imageNames.join(', ')})` });
    if (getImage(cfg, s).kind !== 'job') throw new UsageError(`${s} is not a job image`, { where: `${cfg.file}: release.jalien.sandboxes`, hint: 'only kind: job images become sandboxes' });
  }
  return { images, sandboxes };
}

function releaseJava(cfg: FromGitConfig, repoDir: string): { jdk: string; libs: string[]; mountPrefix: string } | undefined {
  const j = cfg.release.java32;
  if (!j) return undefined;
  const java = { jdk: resolve(cfg.root, j.jdk), libs: j.libs.map((l) => resolve(cfg.root, l)), mountPrefix: mountPrefixOf(undefined, repoDir, cfg) };
  for (const [i, p] of [java.jdk, ...java.libs].entries()) {
    if (!existsSync(p)) {
      throw new UsageError(`${p} does not exist`, { where: `${cfg.file}: release.java32.${i === 0 ? 'jdk' : `libs[${i - 1}]`}`, hint: 'fetch the i386 packages with `bash scripts/fetch-i386.sh` and point release.java32 at them' });
    }
  }
  return java;
}

/** Release the version tagged on HEAD of `opts.cwd` (or only plan it with `dryRun`). */
export async function releaseFromGit(cfg: FromGitConfig, opts: FromGitOptions): Promise<FromGitResult> {
  const say = opts.onProgress ?? (() => {});
  const git = await releaseTagOnHead(opts.cwd);
  const version = git.version;
  const repoDir = repoDirOf(opts.repo, cfg);
  const arch = archOf(opts.arch, cfg);
  const jars = releaseJars(cfg);
  const { images, sandboxes } = releaseImages(cfg, version);
  const java = releaseJava(cfg, repoDir);
  const plan = planRelease({ git, repoDir, arch, jars, images, sandboxes, java32: java });
  if (opts.dryRun) return { plan };

  const results: Record<string, unknown>[] = [];
  const stepOf = (kind: string, target: string) => plan.steps.find((s) => s.step === kind && s.target.startsWith(target))!;
  for (const img of images) {
    const step = stepOf('image', img.ref);
    say(`release ${version}: ${step.what}`);
    const r = await runStep(step, () => buildImage(cfg, img.name, { version, flatten: true, revision: git.commit, onProgress: opts.onProgress }));
    results.push({ step: 'image', name: img.name, ref: r.ref, id: r.id, flattened: r.flattened });
  }
  for (const s of sandboxes) {
    const ref = images.find((i) => i.name === s)!.ref;
    const path = `containers/fs/singularity/${s}-${version}`;
    const step = stepOf('sandbox', path);
    say(`release ${version}: ${step.what} -> ${path}`);
    const r = await runStep(step, () => writeSandboxToRepository({ source: ref, repo: repoDir, path, message: `sandbox ${s} ${version}`, onProgress: opts.onProgress }));
    results.push({ step: 'sandbox', image: s, path, revision: r.revision });
  }
  if (java) {
    const step = plan.steps.find((s) => s.step === 'java32')!;
    say(`release ${version}: ${step.what}`);
    const r = await runStep(step, () => releaseJava32(repoDir, { ...java, arch, force: opts.force, onProgress: opts.onProgress }));
    results.push({ step: 'java32', path: r.publish.path, status: r.publish.status, revision: r.publish.revision });
  }
  const jstep = plan.steps.find((s) => s.step === 'jalien')!;
  say(`release ${version}: ${jstep.what}`);
  const candidate = opts.smoke ? `${version}-candidate` : undefined;
  const jr = await runStep(jstep, () => releaseJalien(repoDir, { version, arch, jars, javaModule: cfg.release.jalien.javaModule, makeDefault: !candidate, force: opts.force, tag: candidate ?? version, message: `release ${version} (${git.commit.slice(0, 12)})`, onProgress: opts.onProgress }));
  results.push({ step: 'jalien', ...jr });
  if (opts.smoke && candidate) {
    if (!listTags(repoDir).some((t) => t.name === candidate)) await tagRevision(repoDir, candidate, { message: `release ${version} candidate` });
    say(`release ${version}: smoke jobs against ${candidate} before the default switch`);
    await opts.smoke({ version, tag: candidate, repoDir });
    const d = await setDefaultVersion(repoDir, { arch, version, onProgress: opts.onProgress });
    results.push({ step: 'default', ...d });
    if (!listTags(repoDir).some((t) => t.name === version)) await tagRevision(repoDir, version, { message: `release ${version}` });
    return { plan, results, jalien: { ...jr, default: version }, tagged: true };
  }
  let tagged = jr.status !== 'unchanged';
  if (!tagged && !listTags(repoDir).some((t) => t.name === version)) {
    await tagRevision(repoDir, version, { message: `release ${version}` });
    tagged = true;
  }
  return { plan, results, jalien: jr, tagged };
}
