/**
 * `gridforge elastic resume|suspend|status|reap|prepare|image`: elastic worker nodes on Slurm's own
 * cloud scheduling (elastic/README.md). resume and suspend are Slurm's ResumeProgram and
 * SuspendProgram (through the wrappers of `render slurm-elastic --install`). Parses, calls
 * elastic/index.ts, prints.
 */
import type { Command } from 'commander';
import { buildWorkerNodeImage, elasticStatus, formatElasticStatus, loadPool, providerFor, reap, resumeNodes, suspendNodes } from '../../elastic/index.ts';
import { UsageError } from '../../base/errors.ts';
import { loadSiteSpec } from '../../stacks/spec.ts';
import { printJson, printLine } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { summaryOf } from './groups.ts';

function site(o: { site?: string }) {
  if (!o.site) throw new UsageError('no site file given', { where: '--site', hint: 'pass --site sites/<name>.yaml (the file with the elastic: block)' });
  const spec = loadSiteSpec(o.site, { checkSiblings: false });
  return { spec, pool: loadPool(spec) };
}

export function register(program: Command): void {
  const el = program.command('elastic').description(summaryOf('elastic'));
  withJson(el.command('resume <hostlist>').description("Slurm's ResumeProgram: create a worker node per node name, register its address, wait for slurmd").requiredOption('--site <site-file>', 'site file with the elastic: block')).action(
    action(async (hostlist: string, o: { site: string; json?: boolean }) => {
      const { spec, pool } = site(o);
      const r = await resumeNodes(spec, pool, hostlist);
      if (o.json) printJson(r);
      else for (const x of r) printLine(x.ok ? `${x.node}: created at ${x.address} in ${x.createSeconds?.toFixed(1)} s${x.registeredSeconds ? `, registered after ${x.registeredSeconds.toFixed(1)} s` : ', not registered yet'}` : `${x.node}: FAILED: ${x.error}`);
      return r.every((x) => x.ok) ? 0 : 1;
    }),
  );
  withJson(el.command('suspend <hostlist>').description("Slurm's SuspendProgram: remove the nodes").requiredOption('--site <site-file>', 'site file with the elastic: block')).action(
    action(async (hostlist: string, o: { site: string; json?: boolean }) => {
      const { spec, pool } = site(o);
      const r = await suspendNodes(spec, pool, hostlist);
      if (o.json) printJson(r);
      else for (const x of r) printLine(x.error ? `${x.node}: FAILED: ${x.error}` : `${x.node}: ${x.removed ? 'removed' : 'had nothing'}`);
      return r.every((x) => !x.error) ? 0 : 1;
    }),
  );
  withJson(el.command('status').description("per node: Slurm's state, the provider's resource, the node's life").requiredOption('--site <site-file>', 'site file with the elastic: block')).action(
    action(async (o: { site: string; json?: boolean }) => {
      const { spec, pool } = site(o);
      const s = await elasticStatus(spec, pool);
      if (o.json) printJson(s);
      else printLine(formatElasticStatus(s));
    }),
  );
  withJson(el.command('reap').description('remove provider resources Slurm no longer knows, holds powered down, or that never registered').requiredOption('--site <site-file>', 'site file with the elastic: block')).action(
    action(async (o: { site: string; json?: boolean }) => {
      const { spec, pool } = site(o);
      const r = await reap(spec, pool);
      if (o.json) printJson(r);
      else printLine(r.length ? r.map((x) => `${x.node} (${x.id}): reaped: ${x.reason}`).join('\n') : 'nothing to reap');
    }),
  );
  withJson(el.command('prepare').description('load the worker-node image and make the MACVLAN network on every provider host').requiredOption('--site <site-file>', 'site file with the elastic: block')).action(
    action(async (o: { site: string; json?: boolean }) => {
      const { spec, pool } = site(o);
      const p = providerFor(pool, spec);
      try {
        const said = await p.prepare();
        if (o.json) printJson(said);
        else printLine(said.length ? said.join('\n') : 'every provider host has the image and the network');
      } finally {
        p.close();
      }
    }),
  );
  withJson(el.command('image').description('build the worker-node image (templates/worker-node/) in the local engine').option('--tag <ref>', 'image reference')).action(
    action(async (o: { tag?: string; json?: boolean }) => {
      const ref = await buildWorkerNodeImage({ tag: o.tag });
      if (o.json) printJson({ image: ref });
      else printLine(ref);
    }),
  );
}
