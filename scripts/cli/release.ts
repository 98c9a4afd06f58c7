/**
 * `gridforge release ...`: JAliEn package + modulefile, the 32-bit Java runtime, the module default,
 * and publish-on-tag (`release --from-git`). Parsing and printing only; the work is in release/
 * (release/index.ts: one library call per command).
 *
 * Shared options (--repo, --arch, --force, --json) live on `release` itself, so they work before or
 * after the sub-command; sub-commands read them with optsWithGlobals().
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../../base/errors.ts';
import {
  archOf, mountPrefixOf, releaseFromGit, releaseJalien, releaseJava32, repoDirOf, setDefaultVersion,
  type AssembledRuntime, type ReleasePlan,
} from '../../release/index.ts';
import { loadConfig, type ProjectConfig } from './project-config.ts';
import { printJson, printLine, progress } from '../lib/output.ts';
import { action } from './command.ts';
import { summaryOf } from './groups.ts';
import { collect } from './options.ts';

interface GlobalOpts {
  config?: string;
  repo?: string;
  arch?: string;
  force?: boolean;
  json?: boolean;
  fromGit?: boolean;
  dryRun?: boolean;
  cwd?: string;
  smoke?: boolean;
}

/** The project config when the file exists (release jalien/java32/default work without one). */
function optionalConfig(file = 'gridforge.yaml'): ProjectConfig | undefined {
  return existsSync(file) ? loadConfig(file) : undefined;
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
    .description(summaryOf('release'))
    .option('--from-git', 'release the version tagged on HEAD: images, sandboxes, Java runtime, JAliEn (as default), repository tag')
    .option('--dry-run', 'with --from-git: print the plan and change nothing')
    .option('--smoke', 'with --from-git: run smoke jobs on the testbed against the candidate revision before making JAliEn the default (scripts/cli/release-smoke.ts)')
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
        const repoDir = repoDirOf(g.repo, cfg);
        const r = await releaseJalien(repoDir, {
          version,
          arch: archOf(g.arch, cfg),
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
        const r = await setDefaultVersion(repoDirOf(g.repo, cfg), { arch: archOf(g.arch, cfg), version, module: opts.module, onProgress: progress });
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
        const repoDir = repoDirOf(g.repo, cfg);
        const r = await releaseJava32(repoDir, { jdk, libs, mountPrefix: mountPrefixOf(opts.mountPrefix, repoDir, cfg), jdkVersion: opts.jdkVersion, cacerts: opts.cacerts, arch: archOf(g.arch, cfg), latest: opts.latest, force: g.force, onProgress: progress });
        if (g.json) return printJson(r);
        printJava32(r.runtime);
        printLine(r.publish.status === 'unchanged'
          ? `${r.publish.path} is already published with identical content: nothing changed`
          : `${r.publish.path} ${r.publish.status} in revision ${r.publish.revision}; jdk-latest -> ${r.publish.latest ?? '(unset)'}; modulefile ${r.publish.modulefile}`);
      }),
    );
}

async function fromGit(g: GlobalOpts): Promise<number | void> {
  const cfg = loadConfig(g.config ?? 'gridforge.yaml');
  const smoke = g.smoke && !g.dryRun ? (await import('./release-smoke.ts')).releaseSmoke(progress) : undefined;
  const r = await releaseFromGit(cfg, { cwd: resolve(g.cwd ?? process.cwd()), repo: g.repo, arch: g.arch, force: g.force, dryRun: g.dryRun, smoke, onProgress: progress });
  if (g.dryRun) {
    if (g.json) return printJson({ dryRun: true, ...r.plan });
    printPlan(r.plan, true);
    return;
  }
  if (g.json) return printJson({ dryRun: false, ...r.plan, results: r.results, tagged: r.tagged });
  printPlan(r.plan, false);
  const jr = r.jalien!;
  printLine(`released ${r.plan.version}: JAliEn ${jr.status}, default ${jr.default}${r.tagged ? `, repository tag ${r.plan.version}` : ''}`);
}

function printPlan(plan: ReleasePlan, dry: boolean): void {
  printLine(`${dry ? 'plan (dry run, nothing changed)' : 'release'}: version ${plan.version} from commit ${plan.commit.slice(0, 12)} into ${plan.repoDir} (${plan.arch})`);
  plan.steps.forEach((s, i) => printLine(`  ${i + 1}. ${s.step.padEnd(7)} ${s.what}\n             -> ${s.target}`));
  printLine(`  ${plan.steps.length + 1}. tag     repository revision tagged ${plan.tag}`);
}
