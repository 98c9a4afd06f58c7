/**
 * `gridforge release ...`: JAliEn package + modulefile, the 32-bit Java runtime, the module default,
 * and publish-on-tag (`release --from-git`). Parsing and printing only; the work is in
 * cvmfs-publish/jalien and cvmfs-publish/java32 (image steps come from images/).
 *
 * Shared options (--repo, --arch, --force, --json) live on `release` itself, so they work before or
 * after the sub-command; sub-commands read them with optsWithGlobals().
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildImage } from '../../images/build.ts';
import { writeSandboxToRepository } from '../../images/sandbox/repo-sink.ts';
import { listTags, readRepoConfig, tagRevision } from '../../cvmfs-publish/index.ts';
import {
  assembleJava32, discardAssembly, planRelease, publishJava32, releaseJalien, releaseTagOnHead, runStep, setDefaultVersion,
  type AssembledRuntime, type ReleasePlan,
} from '../../cvmfs-publish/jalien/index.ts';
import { getImage, imageRef, loadConfig, type ProjectConfig } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { printJson, printLine, progress } from '../lib/output.ts';
import { action } from './command.ts';

interface GlobalOpts {
  config?: string;
  repo?: string;
  arch?: string;
  force?: boolean;
  json?: boolean;
  fromGit?: boolean;
  dryRun?: boolean;
  cwd?: string;
}

/** The project config when the file exists (release jalien/java32/default work without one). */
function optionalConfig(file = 'gridforge.yaml'): ProjectConfig | undefined {
  return existsSync(file) ? loadConfig(file) : undefined;
}

function repoDirOf(g: GlobalOpts, cfg?: ProjectConfig): string {
  const dir = g.repo ?? cfg?.repository.dir;
  if (!dir) throw new UsageError('no repository given', { where: '--repo', hint: 'pass --repo <repo-dir> (or set repository.dir in gridforge.yaml)' });
  if (!existsSync(join(dir, '.cvmfspublished'))) {
    throw new UsageError(`${dir} is not a repository`, { where: `--repo ${dir}`, hint: 'create it with `gridforge repo init <dir> --name <fqrn>`' });
  }
  return resolve(dir);
}

function archOf(g: GlobalOpts, cfg?: ProjectConfig): string {
  return g.arch ?? cfg?.release.jalien.arch ?? 'el9-x86_64';
}

function mountPrefixOf(explicit: string | undefined, repoDir: string, cfg?: ProjectConfig): string {
  return explicit ?? cfg?.release.java32?.mountPrefix ?? `/cvmfs/${readRepoConfig(repoDir).name}`;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function printJava32(rt: AssembledRuntime): void {
  printLine(`runtime ${rt.name}: ${rt.libs.length} bundled libraries (${rt.libs.join(', ')})`);
  printLine(`  interpreter ${rt.interpreter}`);
  printLine(`  LD_LIBRARY_PATH ignored by the loader: ${rt.ldLibraryPathIgnored === undefined ? 'not verified (host cannot run i386)' : rt.ldLibraryPathIgnored ? 'yes (verified)' : 'NO'}`);
  if (rt.loader.rpathNote) printLine(`  loader RPATH ${rt.loader.rpathNote}`);
  const optional = rt.unresolved.filter((u) => !u.core);
  if (optional.length) printLine(`  optional libraries not bundled: ${optional.map((u) => `${u.name} (${u.neededBy.join(', ')})`).join('; ')}`);
  printLine(`  ${Object.keys(rt.links.resolved).length} links into /etc resolved into real files; lib/security/cacerts from ${rt.links.resolved['lib/security/cacerts'] ?? '(none: TLS trust store missing, pass --cacerts)'}`);
  if (rt.links.dropped.length) printLine(`  links left out: ${rt.links.dropped.join(', ')}`);
}

export function register(program: Command): void {
  const release = program
    .command('release')
    .description('publish JAliEn releases, the 32-bit Java runtime and module defaults; `release --from-git` runs the whole release for the tag on HEAD')
    .option('--from-git', 'release the version tagged on HEAD: images, sandboxes, Java runtime, JAliEn (as default), repository tag')
    .option('--dry-run', 'with --from-git: print the plan and change nothing')
    .option('--cwd <dir>', 'with --from-git: git work tree to read the tag from (default: current directory)')
    .option('--repo <repo-dir>', 'repository directory (default: repository.dir of gridforge.yaml)')
    .option('--arch <arch>', 'platform directory, e.g. el9-x86_64 (default: release.jalien.arch of gridforge.yaml)')
    .option('--force', 'replace a version already published with different content')
    .option('--json', 'print one JSON document on stdout instead of human output')
    .configureHelp({ showGlobalOptions: true })
    .action(
      action(async (opts: GlobalOpts, cmd: Command) => {
        const g = cmd.optsWithGlobals() as GlobalOpts;
        if (!g.fromGit) {
          cmd.outputHelp({ error: true });
          throw new UsageError('no sub-command given', { hint: 'use `release jalien`, `release java32`, `release default` or `release --from-git`' });
        }
        return fromGit(g);
      }),
    );

  release
    .command('jalien <version>')
    .description('publish <arch>/Packages/JAliEn/<version> and its modulefile; the new version becomes the module default')
    .option('--jar <file>', 'JAliEn jar to publish (repeat for several)', collect)
    .option('--java-module <module>', 'module the modulefile loads for Java (default: release.jalien.javaModule or Java)')
    .option('--no-default', 'do not make this version the module default')
    .option('--tag <name>', 'also tag the new repository revision')
    .action(
      action(async (version: string, opts: { jar?: string[]; javaModule?: string; default: boolean; tag?: string }, cmd: Command) => {
        const g = cmd.optsWithGlobals() as GlobalOpts;
        const cfg = optionalConfig(g.config);
        const repoDir = repoDirOf(g, cfg);
        const r = await releaseJalien(repoDir, {
          version,
          arch: archOf(g, cfg),
          jars: opts.jar ?? [],
          javaModule: opts.javaModule ?? cfg?.release.jalien.javaModule,
          makeDefault: opts.default,
          force: g.force,
          tag: opts.tag,
          onProgress: progress,
        });
        if (g.json) return printJson(r);
        if (r.status === 'unchanged') printLine(`JAliEn ${r.version} (${r.arch}) is already published with identical content: nothing changed (default ${r.default ?? 'none'})`);
        else printLine(`JAliEn ${r.version} (${r.arch}) ${r.status} in revision ${r.revision}: ${r.package}, ${r.modulefile}; default ${r.default ?? 'none'}`);
      }),
    );

  release
    .command('default <version>')
    .description('switch the module default (explicit .version file) to <version>, as one repository revision')
    .option('--module <name>', 'module whose default to switch (JAliEn or Java)', 'JAliEn')
    .action(
      action(async (version: string, opts: { module: string }, cmd: Command) => {
        const g = cmd.optsWithGlobals() as GlobalOpts;
        const cfg = optionalConfig(g.config);
        const r = await setDefaultVersion(repoDirOf(g, cfg), { arch: archOf(g, cfg), version, module: opts.module, onProgress: progress });
        if (g.json) return printJson(r);
        printLine(r.status === 'unchanged'
          ? `${r.module} default for ${r.arch} is already ${r.version}: nothing changed`
          : `${r.module} default for ${r.arch}: ${r.previous ?? '(none)'} -> ${r.version} (revision ${r.revision})`);
      }),
    );

  release
    .command('java32')
    .description('publish the 32-bit Java runtime with its own patched glibc at java/JDKs/i686/jdk-<version> and switch jdk-latest')
    .option('--jdk <dir|deb|tar.gz>', 'the i386 JDK (e.g. openjdk-17-jre-headless_*_i386.deb from scripts/fetch-i386.sh)')
    .option('--libs <dir|deb|tar.gz...>', 'i386 library packages or trees (libc6, zlib1g, libstdc++6, libgcc-s1, ...)')
    .option('--mount-prefix <path>', 'where worker nodes mount the repository (default /cvmfs/<repository name>)')
    .option('--jdk-version <version>', 'publish under this version (default: JAVA_VERSION of the JDK)')
    .option('--cacerts <file>', 'Java keystore for lib/security/cacerts when the packages do not carry one')
    .option('--no-latest', 'do not switch jdk-latest and the Java module default')
    .action(
      action(async (opts: { jdk?: string; libs?: string[]; mountPrefix?: string; jdkVersion?: string; cacerts?: string; latest: boolean }, cmd: Command) => {
        const g = cmd.optsWithGlobals() as GlobalOpts;
        const cfg = optionalConfig(g.config);
        const jdk = opts.jdk ?? cfg?.release.java32?.jdk;
        const libs = opts.libs ?? cfg?.release.java32?.libs;
        if (!jdk) throw new UsageError('no JDK given', { where: '--jdk', hint: 'pass --jdk <openjdk-17-jre-headless_*_i386.deb> (bash scripts/fetch-i386.sh downloads it)' });
        if (!libs?.length) throw new UsageError('no libraries given', { where: '--libs', hint: 'pass --libs with the i386 libc6, zlib1g, libstdc++6, libgcc-s1 packages' });
        const repoDir = repoDirOf(g, cfg);
        const r = await java32(repoDir, { jdk, libs, mountPrefix: mountPrefixOf(opts.mountPrefix, repoDir, cfg), jdkVersion: opts.jdkVersion, cacerts: opts.cacerts, arch: archOf(g, cfg), latest: opts.latest, force: g.force });
        if (g.json) return printJson(r);
        printJava32(r.runtime);
        printLine(r.publish.status === 'unchanged'
          ? `${r.publish.path} is already published with identical content: nothing changed`
          : `${r.publish.path} ${r.publish.status} in revision ${r.publish.revision}; jdk-latest -> ${r.publish.latest ?? '(unset)'}; modulefile ${r.publish.modulefile}`);
      }),
    );
}

async function java32(repoDir: string, o: { jdk: string; libs: string[]; mountPrefix: string; jdkVersion?: string; cacerts?: string; arch: string; latest?: boolean; force?: boolean; tag?: string }) {
  const work = await mkdtemp(join(tmpdir(), 'gridforge-java32-'));
  try {
    const runtime = await assembleJava32({ jdk: o.jdk, libs: o.libs, mountPrefix: o.mountPrefix, workDir: work, jdkVersion: o.jdkVersion, cacerts: o.cacerts, onProgress: progress });
    const publish = await publishJava32(repoDir, runtime, { arch: o.arch, makeLatest: o.latest, force: o.force, tag: o.tag, onProgress: progress });
    await discardAssembly(runtime);
    return { runtime, publish };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function fromGit(g: GlobalOpts): Promise<number | void> {
  const cfg = loadConfig(g.config ?? 'gridforge.yaml');
  const git = await releaseTagOnHead(resolve(g.cwd ?? process.cwd()));
  const version = git.version;
  const repoDir = repoDirOf(g, cfg);
  const arch = archOf(g, cfg);
  const rel = cfg.release;
  const jars = (rel.jalien.jars ?? []).map((j) => resolve(cfg.root, j));
  if (!jars.length) {
    throw new UsageError('no JAliEn jars configured for the release', { where: `${cfg.file}: release.jalien.jars`, hint: 'list the built jar(s), e.g. jars: [build/alien-users.jar]' });
  }
  for (const j of jars) if (!existsSync(j)) throw new UsageError(`jar ${j} does not exist`, { where: `${cfg.file}: release.jalien.jars`, hint: 'build JAliEn before releasing (CI: build job before the release job)' });
  const imageNames = rel.jalien.images ?? Object.keys(cfg.images);
  const images = imageNames.map((n) => {
    const img = getImage(cfg, n);
    return { name: n, kind: img.kind, ref: imageRef(cfg, img, version) };
  });
  const sandboxes = rel.jalien.sandboxes ?? images.filter((i) => i.kind === 'job').map((i) => i.name);
  for (const s of sandboxes) {
    if (!images.some((i) => i.name === s)) throw new UsageError(`sandbox image ${s} is not among the release images`, { where: `${cfg.file}: release.jalien.sandboxes`, hint: `add it to release.jalien.images (${imageNames.join(', ')})` });
    if (getImage(cfg, s).kind !== 'job') throw new UsageError(`${s} is not a job image`, { where: `${cfg.file}: release.jalien.sandboxes`, hint: 'only kind: job images become sandboxes' });
  }
  const java = rel.java32
    ? { jdk: resolve(cfg.root, rel.java32.jdk), libs: rel.java32.libs.map((l) => resolve(cfg.root, l)), mountPrefix: mountPrefixOf(undefined, repoDir, cfg) }
    : undefined;
  if (java) {
    for (const [i, p] of [java.jdk, ...java.libs].entries()) {
      if (!existsSync(p)) {
        throw new UsageError(`${p} does not exist`, { where: `${cfg.file}: release.java32.${i === 0 ? 'jdk' : `libs[${i - 1}]`}`, hint: 'fetch the i386 packages with `bash scripts/fetch-i386.sh` and point release.java32 at them' });
      }
    }
  }
  const plan = planRelease({ git, repoDir, arch, jars, images, sandboxes, java32: java });

  if (g.dryRun) {
    if (g.json) return printJson({ dryRun: true, ...plan });
    printPlan(plan, true);
    return;
  }

  const results: Record<string, unknown>[] = [];
  const stepOf = (kind: string, target: string) => plan.steps.find((s) => s.step === kind && s.target.startsWith(target))!;
  for (const img of images) {
    const step = stepOf('image', img.ref);
    progress(`release ${version}: ${step.what}`);
    const r = await runStep(step, () => buildImage(cfg, img.name, { version, flatten: true, revision: git.commit, onProgress: progress }));
    results.push({ step: 'image', name: img.name, ref: r.ref, id: r.id, flattened: r.flattened });
  }
  for (const s of sandboxes) {
    const ref = images.find((i) => i.name === s)!.ref;
    const path = `containers/fs/singularity/${s}-${version}`;
    const step = stepOf('sandbox', path);
    progress(`release ${version}: ${step.what} -> ${path}`);
    const r = await runStep(step, () => writeSandboxToRepository({ source: ref, repo: repoDir, path, message: `sandbox ${s} ${version}` }));
    results.push({ step: 'sandbox', image: s, path, revision: r.revision });
  }
  if (java) {
    const step = plan.steps.find((s) => s.step === 'java32')!;
    progress(`release ${version}: ${step.what}`);
    const r = await runStep(step, () => java32(repoDir, { ...java, arch, force: g.force }));
    results.push({ step: 'java32', path: r.publish.path, status: r.publish.status, revision: r.publish.revision });
  }
  const jstep = plan.steps.find((s) => s.step === 'jalien')!;
  progress(`release ${version}: ${jstep.what}`);
  const jr = await runStep(jstep, () => releaseJalien(repoDir, { version, arch, jars, javaModule: rel.jalien.javaModule, makeDefault: true, force: g.force, tag: version, message: `release ${version} (${git.commit.slice(0, 12)})`, onProgress: progress }));
  results.push({ step: 'jalien', ...jr });
  // A re-run with nothing new still ends with the version tag on the current revision.
  let tagged = jr.status !== 'unchanged';
  if (!tagged && !listTags(repoDir).some((t) => t.name === version)) {
    await tagRevision(repoDir, version, { message: `release ${version}` });
    tagged = true;
  }
  if (g.json) return printJson({ dryRun: false, ...plan, results, tagged });
  printPlan(plan, false);
  printLine(`released ${version}: JAliEn ${jr.status}, default ${jr.default}${tagged ? `, repository tag ${version}` : ''}`);
}

function printPlan(plan: ReleasePlan, dry: boolean): void {
  printLine(`${dry ? 'plan (dry run, nothing changed)' : 'release'}: version ${plan.version} from commit ${plan.commit.slice(0, 12)} into ${plan.repoDir} (${plan.arch})`);
  plan.steps.forEach((s, i) => printLine(`  ${i + 1}. ${s.step.padEnd(7)} ${s.what}\n             -> ${s.target}`));
  printLine(`  ${plan.steps.length + 1}. tag     repository revision tagged ${plan.tag}`);
}
