/** `gridforge site ...`: check, plan, deploy, status, logs, destroy a VO-box described by a site file. */
import type { Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { action, withJson } from './command.ts';
import { UsageError } from '../../base/errors.ts';
import { formatTable, printJson, printLine, progress, warn } from '../lib/output.ts';
import { summaryOf } from './groups.ts';
import { SERVICES, deploySite, destroySite, formatPlan, loadSiteSpec, planSite, preflight, siteLogs, siteStatus, type Plan } from '../../stacks/index.ts';

const planLines = (plan: Plan): string[] => formatPlan(plan);

async function askTty(plan: Plan): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
  process.stderr.write(`${planLines(plan).join('\n')}\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = await rl.question('Apply these changes? [y/N] ');
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}

function overridesFrom(o: { image?: string; jalienVersion?: string }) {
  return { image: o.image, jalienVersion: o.jalienVersion };
}

export function register(program: Command): void {
  const site = program.command('site').description(summaryOf('site'));

  withJson(site.command('check <site-file>').description('preflight: kernel, Docker API, privileged, live-restore, nofile, network, CVMFS, user namespaces, disk'))
    .action(
      action(async (file: string, o: { json?: boolean }) => {
        const spec = loadSiteSpec(file);
        // a pool definition that cannot work is bad input, refused before anything is reached over SSH
        if (spec.elastic) (await import('../../elastic/index.ts')).loadPool(spec);
        const r = await preflight(spec);
        if (spec.elastic) {
          // the elastic pool's rows (elastic/check.ts): a pool that cannot work fails the check
          const rows = await (await import('../../elastic/index.ts')).checkPool(spec);
          r.rows.push(...rows);
          if (rows.some((x) => x.status === 'fail')) r.ok = false;
        }
        if (o.json) printJson(r);
        else {
          printLine(`preflight for ${spec.site} on ${r.host}`);
          printLine(formatTable(['check', 'status', 'detail', 'fix'], r.rows.map((x) => [x.check, x.status.toUpperCase(), x.detail, x.fix ?? ''])));
        }
        return r.ok ? 0 : 1;
      }),
    );

  withJson(
    site
      .command('plan <site-file>')
      .description('print exactly what deploy would change on the host; changes nothing')
      .option('--image <ref>', 'use this image instead of vobox.image')
      .option('--jalien-version <v>', 'pin this JAliEn version instead of vobox.jalien.version')
      .option('--recreate-network', 'plan to recreate a mismatching Docker network'),
  ).action(
    action(async (file: string, o: { json?: boolean; image?: string; jalienVersion?: string; recreateNetwork?: boolean }) => {
      const spec = loadSiteSpec(file);
      const plan = await planSite(spec, { ...overridesFrom(o), recreateNetwork: o.recreateNetwork });
      for (const w of plan.warnings) warn(w);
      if (o.json) printJson({ site: plan.site, host: plan.host, apiVersion: plan.apiVersion, changes: plan.changes, warnings: plan.warnings, nofile: plan.settings.nofile, settingsHash: plan.settings.settingsHash });
      else planLines(plan).forEach((l) => printLine(l));
    }),
  );

  withJson(
    site
      .command('deploy <site-file>')
      .description('apply the plan over SSH and wait until every enabled service is RUNNING; restores the previous container on failure')
      .option('-y, --yes', 'apply without asking (required when not on a terminal)')
      .option('--image <ref>', 'use this image instead of vobox.image')
      .option('--jalien-version <v>', 'pin this JAliEn version instead of vobox.jalien.version')
      .option('--recreate-network', 'remove and recreate the Docker network when it differs from the site file')
      .option('--health-timeout <seconds>', 'how long to wait for every service to be RUNNING', '120'),
  ).action(
    action(async (file: string, o: { json?: boolean; yes?: boolean; image?: string; jalienVersion?: string; recreateNetwork?: boolean; healthTimeout: string }) => {
      const spec = loadSiteSpec(file);
      const timeout = Number(o.healthTimeout);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--health-timeout ${o.healthTimeout} is not a positive number of seconds`, { hint: 'e.g. --health-timeout 120' });
      const r = await deploySite(spec, {
        overrides: overridesFrom(o),
        recreateNetwork: o.recreateNetwork,
        yes: o.yes,
        confirm: askTty,
        onProgress: progress,
        healthTimeoutMs: timeout * 1000,
      });
      if (o.json) printJson(r);
      else {
        if (!r.changed) printLine(`${r.site} on ${r.host}: no changes (${(r.durationMs / 1000).toFixed(1)} s)`);
        else {
          printLine(`${r.site} on ${r.host}: applied ${r.changes.length} change(s) in ${(r.durationMs / 1000).toFixed(1)} s`);
          r.changes.forEach((c) => printLine(`  ${c.action.padEnd(7)} ${c.kind.padEnd(14)} ${c.target}`));
        }
        printLine(`VO-box ${r.container.name}: ${r.container.ip} ${r.container.mac}, nofile ${r.nofile.applied}${r.nofile.clamped ? ` (clamped from ${r.nofile.requested})` : ''}, ${r.health.healthy ? 'healthy' : `NOT healthy: ${r.health.reason}`}`);
      }
      return r.health.healthy ? 0 : 1;
    }),
  );

  withJson(site.command('status <site-file>').description('live state: image, JAliEn version, uptime, services'))
    .action(
      action(async (file: string, o: { json?: boolean }) => {
        const spec = loadSiteSpec(file);
        const st = await siteStatus(spec);
        if (o.json) printJson(st);
        else if (!st.exists) printLine(`${st.site} on ${st.host}: VO-box ${spec.vobox.name} is not deployed`);
        else {
          printLine(`${st.site} on ${st.host}: ${spec.vobox.name} ${st.running ? 'running' : 'stopped'}, ${st.healthy ? 'healthy' : 'NOT healthy'}`);
          printLine(`  image ${st.image} (${st.imageId?.slice(0, 19)}), JAliEn ${st.jalienVersion ?? '(module default)'}, uptime ${st.uptime ?? '-'} s, ${st.ip ?? '-'} ${st.mac ?? ''}`);
          printLine(formatTable(['service', 'state'], Object.entries(st.services).map(([k, v]) => [k, v])));
        }
        return st.exists && st.healthy ? 0 : 1;
      }),
    );

  withJson(site.command('logs <site-file> <service>').description(`last lines of a service's log (${SERVICES.join(', ')})`).option('--bytes <n>', 'how much of the log tail', '8000'))
    .action(
      action(async (file: string, service: string, o: { json?: boolean; bytes: string }) => {
        const spec = loadSiteSpec(file);
        if (!(SERVICES as readonly string[]).includes(service)) throw new UsageError(`unknown service ${service}`, { hint: `Use one of: ${SERVICES.join(', ')}.` });
        const text = await siteLogs(spec, service, Number(o.bytes) || 8000);
        if (o.json) printJson({ site: spec.site, service, log: text });
        else printLine(text);
      }),
    );

  withJson(site.command('destroy <site-file>').description('remove what deploy created (container, unused network, shim, host files); volume data is kept').option('-y, --yes', 'required'))
    .action(
      action(async (file: string, o: { json?: boolean; yes?: boolean }) => {
        const spec = loadSiteSpec(file, { checkSiblings: false });
        if (!o.yes) throw new UsageError(`destroy of ${spec.site} needs --yes`, { hint: 'Run gridforge site destroy <site-file> --yes.' });
        const r = await destroySite(spec, { onProgress: progress });
        if (o.json) printJson(r);
        else {
          printLine(`${spec.site}: removed ${r.removed.length ? r.removed.join(', ') : 'nothing (not deployed)'}`);
          printLine(`kept: ${r.kept.join('; ')}`);
        }
      }),
    );
}
