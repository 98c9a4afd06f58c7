/**
 * `gridforge render ...`: files rendered from a site file and the project config.
 * `render jobagent-startup --site <site.yaml>`: the JobAgent startup script a CE submits to the batch
 * queue (release/jalien/jobagent-startup.ts). The site file is read by the deploy capability's
 * loader (stacks/spec.ts): site, vobox.hostname, vobox.jalien.version, vobox.cvmfs.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../../base/safe-fs.ts';
import { renderJobAgentStartup } from '../../release/index.ts';
import { loadSiteSpec, type SiteSpec } from '../../stacks/spec.ts';
import { loadConfig } from './project-config.ts';
import { UsageError } from '../../base/errors.ts';
import { printJson, printLine } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { summaryOf } from './groups.ts';
import { collect } from './options.ts';

export interface RenderOpts {
  site?: string;
  output?: string;
  cvmfsRoot?: string;
  jalienVersion?: string;
  java64?: boolean;
  xms?: string;
  xmx?: string;
  class?: string;
  ce?: string;
  ttl?: string;
  env?: string[];
  json?: boolean;
}

/**
 * The startup script for a site file and the command's options (no output written). Exported for
 * test/release/injection.test.ts, which feeds it hostile site files.
 */
export function renderStartupFromSite(opts: RenderOpts, configFile: string): { spec: SiteSpec; script: string } {
  if (!opts.site) throw new UsageError('no site file given', { where: '--site', hint: 'pass --site sites/<name>.yaml' });
  const spec = loadSiteSpec(opts.site, { checkSiblings: false });
  const ja = existsSync(configFile) ? loadConfig(configFile).release.jobagent : undefined;
  const env: Record<string, string> = {};
  for (const e of opts.env ?? []) {
    const i = e.indexOf('=');
    if (i <= 0) throw new UsageError(`"${e}" is not NAME=value`, { where: '--env', hint: 'e.g. --env closeSE=ALICE::CERN::EOS' });
    env[e.slice(0, i)] = e.slice(i + 1);
  }
  const ttl = opts.ttl === undefined ? undefined : Number(opts.ttl);
  if (ttl !== undefined && !Number.isInteger(ttl)) throw new UsageError(`TTL "${opts.ttl}" is not a number of seconds`, { where: '--ttl' });
  const script = renderJobAgentStartup({
    site: spec.site,
    ceHost: spec.vobox.hostname,
    ce: opts.ce,
    ttl,
    jalienVersion: opts.jalienVersion ?? spec.vobox.jalien?.version,
    cvmfsRoot: opts.cvmfsRoot ?? `${spec.vobox.cvmfs.mount.replace(/\/+$/, '')}/${spec.vobox.cvmfs.repositories[0] ?? 'alice.cern.ch'}`,
    java64: opts.java64,
    xms: opts.xms ?? ja?.xms,
    xmx: opts.xmx ?? ja?.xmx,
    mainClass: opts.class ?? ja?.mainClass,
    jar: ja?.jar,
    env,
  });
  return { spec, script };
}

export function register(program: Command): void {
  const render = program.command('render').description(summaryOf('render'));
  withJson(
    render
      .command('jobagent-startup')
      .description('write the JobAgent startup script a CE submits to the batch queue (stdout, or --output)')
      .option('--site <site.yaml>', 'site file (sites/<name>.yaml)')
      .option('-o, --output <file>', 'write the script here (mode 0755) instead of stdout')
      .option('--cvmfs-root <path>', 'repository root on worker nodes (default <vobox.cvmfs.mount>/<first repository>)')
      .option('--jalien-version <version>', 'JAliEn version (default vobox.jalien.version of the site, else the module default)')
      .option('--java64', 'run the JobAgent on the 64-bit java of the JAliEn environment instead of the 32-bit runtime')
      .option('--xms <size>', 'initial heap (default release.jobagent.xms, 16M)')
      .option('--xmx <size>', 'maximum heap (default release.jobagent.xmx, 64M)')
      .option('--class <name>', 'JobAgent main class (default release.jobagent.mainClass, alien.site.JobRunner)')
      .option('--ce <name>', 'CE name in LDAP (default ALICE::<site>::CE)')
      .option('--ttl <seconds>', 'JobAgent time to live (default 86400)')
      .option('--env <NAME=value>', 'extra export in the script (repeatable)', collect),
  ).action(
    action(async (opts: RenderOpts, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { config?: string };
      const { spec, script } = renderStartupFromSite(opts, g.config ?? 'gridforge.yaml');
      if (opts.output) {
        const out = resolve(opts.output);
        if (!existsSync(dirname(out))) throw new UsageError(`directory ${dirname(out)} does not exist`, { where: '--output', hint: 'create it first' });
        // Random exclusive temporary + rename (base/safe-fs.ts): a planted symlink is never followed.
        writeFileAtomic(out, script, { mode: 0o755 });
      }
      if (opts.json) return printJson({ site: spec.site, output: opts.output ? resolve(opts.output) : undefined, script });
      if (opts.output) printLine(`wrote ${resolve(opts.output)}`);
      else process.stdout.write(script);
    }),
  );
  // The slurm.conf fragment of a site's elastic pool (elastic/slurm-conf.ts).
  withJson(
    render
      .command('slurm-elastic')
      .description("the slurm.conf fragment of the site's elastic pool: cloud nodes, Resume/SuspendProgram, timeouts, rates")
      .requiredOption('--site <site.yaml>', 'site file with the elastic: block')
      .option('--partition <name>', 'also a partition line with the cloud nodes')
      .option('--install', 'write the ResumeProgram/SuspendProgram wrappers into <elastic.stateDir>/<site>/bin'),
  ).action(
    action(async (opts: { site: string; partition?: string; install?: boolean; json?: boolean }) => {
      const { loadPool, renderSlurmElastic, installPrograms } = await import('../../elastic/index.ts');
      const pool = loadPool(loadSiteSpec(opts.site, { checkSiblings: false }));
      const programs = opts.install ? installPrograms(pool) : [];
      const text = renderSlurmElastic(pool, { partition: opts.partition });
      if (opts.json) return printJson({ site: pool.site, fragment: text, programs });
      process.stdout.write(text);
    }),
  );
}
