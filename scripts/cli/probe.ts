/** `gridforge probe ...`: Site Sonar probes: publish, run on a node, collect, report (work happens in probes/). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../base/errors.ts';
import { writeFileAtomic } from '../../base/safe-fs.ts';
import { printJson, printLine, progress } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { collect, optionalInt, seconds } from './options.ts';
import { summaryOf } from './groups.ts';
import {
  buildReport, bundledProbesDir, DEFAULT_REPORT_KEYS, formatReport, openResultsStore, publishProbes, renderReportHtml, runProbes,
  serveResults, SITESONAR_PATH, uploadResults,
} from '../../probes/index.ts';

type Json = { json?: boolean };

interface RunFlags extends Json {
  probesDir?: string;
  fromCvmfs?: string;
  image?: string;
  upload?: string;
  probe?: string[];
  site?: string;
  ce?: string;
  hostname?: string;
  networkHost?: string;
  networkPort?: string;
  workdir?: string;
  timeout?: number;
  output?: string;
}

/** Where the probes come from and what the CernVM-FS mount is, from --probes-dir / --from-cvmfs. */
function probeSource(o: RunFlags): { probesDir: string; cvmfsRoot?: string; cvmfsRepos?: string[] } {
  if (o.probesDir && o.fromCvmfs) throw new UsageError('give --probes-dir or --from-cvmfs, not both', { where: '--from-cvmfs', hint: '--from-cvmfs /cvmfs/alice.cern.ch runs the probes published there' });
  if (o.fromCvmfs) {
    const mount = path.resolve(o.fromCvmfs);
    const dir = path.join(mount, SITESONAR_PATH);
    if (!fs.existsSync(dir)) throw new UsageError(`no probes at ${dir}`, { where: '--from-cvmfs', hint: 'give the repository mount point (e.g. /cvmfs/alice.cern.ch) after `gridforge probe publish` reached it' });
    return { probesDir: dir, cvmfsRoot: path.dirname(mount), cvmfsRepos: [path.basename(mount)] };
  }
  return { probesDir: o.probesDir ? path.resolve(o.probesDir) : bundledProbesDir() };
}

export function register(program: Command): void {
  const probe = program.command('probe').description(summaryOf('probe'));

  withJson(probe.command('publish').description(`publish the probe scripts into the repository at ${SITESONAR_PATH} (one revision, tagged sitesonar-<version>)`))
    .requiredOption('--repo <repo-dir>', 'the repository (Stratum-0 storage)')
    .option('--probes-dir <dir>', 'publish this probe directory instead of the probes gridforge ships')
    .option('--tag <name>', 'tag the new revision (default sitesonar-<version>)')
    .option('--message <text>', 'tag description')
    .action(action(async (o: Json & { repo: string; probesDir?: string; tag?: string; message?: string }) => {
      const r = await publishProbes(o.repo, { probesDir: o.probesDir, tag: o.tag, message: o.message, onProgress: progress });
      if (o.json) printJson(r);
      else printLine(`published ${r.probes.length} probes (${r.probes.join(' ')}) version ${r.version} at ${r.path}: revision ${r.revision}${r.tag ? ` (tag ${r.tag})` : ''}`);
    }));

  withJson(probe.command('run').description('run the probes on this node; prints one JSON document (the node\'s results)'))
    .option('--probes-dir <dir>', 'probe directory (default: the probes gridforge ships)')
    .option('--from-cvmfs <mount>', 'run the probes published in a mounted repository, e.g. /cvmfs/alice.cern.ch')
    .option('--image <path>', 'image directory the container probe runs (default <cvmfs>/<repo>/containers/fs/singularity/default)')
    .option('--upload <url>', 'also POST the results to a `probe serve` endpoint')
    .option('--probe <name>', 'run only this probe (repeatable)', collect)
    .option('--site <name>', 'site name recorded with the results (default $ALIEN_SITE)')
    .option('--ce <name>', 'CE name recorded with the results (default $CE_NAME, else the site)')
    .option('--hostname <name>', 'node name recorded (default: this host\'s name)')
    .option('--network-host <host>', 'host the network probe connects to (default alice-jcentral.cern.ch)')
    .option('--network-port <n>', 'port the network probe connects to (default 8097)')
    .option('--workdir <dir>', 'job directory (the probes run there; default: the current directory)')
    .option('--timeout <s>', 'limit per probe, seconds (default 60, the JobAgent\'s)', seconds('--timeout'))
    .option('--output <file>', 'also write the JSON document to this file')
    .action(action(async (o: RunFlags) => {
      const src = probeSource(o);
      const up = await runProbes({
        ...src, probes: o.probe, image: o.image, site: o.site, ce: o.ce, hostname: o.hostname, networkHost: o.networkHost,
        networkPort: optionalInt('--network-port', o.networkPort), workdir: o.workdir, timeoutMs: o.timeout,
      });
      for (const [n, r] of Object.entries(up.probes)) if (r.EXITCODE !== 0 || r.ERROR) progress(`probe ${n}: exit ${r.EXITCODE}${r.TIMED_OUT ? ' (timed out)' : ''}${r.ERROR ? `: ${r.ERROR}` : ''}`);
      if (o.output) writeFileAtomic(o.output, `${JSON.stringify(up, null, 2)}\n`);
      printJson(up); // first: a failed upload (exit 1) still leaves the node's results on stdout
      if (o.upload) {
        const res = await uploadResults(o.upload, up);
        progress(`uploaded ${res.stored} results to ${o.upload}`);
      }
    }));

  withJson(probe.command('serve').description('HTTP endpoint that receives probe results into a results store (until interrupted)'))
    .requiredOption('--results <file>', 'results store (SQLite, created when missing)')
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--port <n>', 'port (0 = any free port)', '8480')
    .action(action(async (o: Json & { results: string; host: string; port: string }) => {
      const s = await serveResults(o.results, { host: o.host, port: optionalInt('--port', o.port), log: (l) => progress(l) });
      if (o.json) printJson({ url: s.url, port: s.port, results: path.resolve(o.results) });
      else printLine(`receiving probe results at ${s.url}/results into ${o.results}`);
      await new Promise<void>((resolve) => {
        const stop = () => void s.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    }));

  withJson(probe.command('report').description('per site and CE: counts and shares of nodes per value of each fact'))
    .requiredOption('--results <file>', 'results store written by `probe serve`')
    .option('--site <name>', 'only this site (repeatable)', collect)
    .option('--where <key=value>', 'only nodes with this fact (repeatable; all must hold), e.g. cpu.x86_64_level=2', collect)
    .option('--key <key>', `count this fact (repeatable; default: ${DEFAULT_REPORT_KEYS.join(', ')})`, collect)
    .option('--html <file>', 'also write the report as a self-contained HTML page')
    .action(action(async (o: Json & { results: string; site?: string[]; where?: string[]; key?: string[]; html?: string }) => {
      const store = openResultsStore(o.results, { readonly: true });
      try {
        const r = buildReport(store, { sites: o.site, where: o.where }, o.key?.length ? o.key : DEFAULT_REPORT_KEYS);
        if (o.html) writeFileAtomic(o.html, renderReportHtml(r));
        if (o.json) printJson(r);
        else printLine(formatReport(r));
      } finally {
        store.close();
      }
    }));
}
