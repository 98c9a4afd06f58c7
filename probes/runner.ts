/**
 * Runs probes on this node the way the JobAgent does (JAliEn alien/site/JobAgent.java runProbe:
 * `bash <dir>/<probe>.sh`, stdout parsed as one JSON object, EXITCODE and EXECUTION_TIME in ms
 * added), with a hard time limit per probe: a probe still running at its limit (60 s, the
 * JobAgent's) is killed with its whole process group and reported as TIMED_OUT. Probes run a few at
 * a time so a node finishes in seconds. Also the upload of one node's results to `probe serve`.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { parseProbeOutput, UPLOAD_SCHEMA, type ProbeResult, type Upload } from './result.ts';
import { listProbes } from './scripts.ts';

/** The JobAgent's limit per probe. */
export const PROBE_TIMEOUT_MS = 60_000;
/** Most stdout kept from a probe (more is a failed probe). */
const MAX_STDOUT = 1024 * 1024;

export interface RunOptions {
  probesDir: string;
  /** Only these probes (default: every <name>.sh in probesDir). */
  probes?: string[];
  /** Image directory the container probe runs (SITESONAR_IMAGE). */
  image?: string;
  /** CernVM-FS mount root and repositories the probes look at (SITESONAR_CVMFS_ROOT / _REPOS). */
  cvmfsRoot?: string;
  cvmfsRepos?: string[];
  /** Host (and port) the network probe connects to. */
  networkHost?: string;
  networkPort?: number;
  /** Job directory (the probes' working directory; the scratch probe measures it). */
  workdir?: string;
  timeoutMs?: number;
  concurrency?: number;
  hostname?: string;
  site?: string;
  ce?: string;
  /** More environment for the probes (the SITESONAR_* overrides of probes/README.md). */
  env?: Record<string, string>;
}

/** Run one probe script; never throws for what the probe does (it is reported in the result). */
export function runProbe(script: string, env: NodeJS.ProcessEnv, cwd: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('bash', [script], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    let timedOut = false;
    let stderrTail = '';
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_STDOUT) {
        tooBig = true;
        killGroup();
      } else chunks.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      stderrTail = (stderrTail + b.toString('utf8')).slice(-500);
    });
    const done = (code: number | null, spawnError?: Error) => {
      clearTimeout(timer);
      killGroup(); // nothing the probe started outlives it
      const ms = Math.round(performance.now() - t0);
      if (spawnError) return resolve({ EXITCODE: 127, EXECUTION_TIME: ms, ERROR: `cannot start bash: ${spawnError.message}` });
      if (timedOut) return resolve({ EXITCODE: 137, EXECUTION_TIME: ms, TIMED_OUT: true, ERROR: `killed at its limit of ${timeoutMs / 1000} s` });
      if (tooBig) return resolve({ EXITCODE: 137, EXECUTION_TIME: ms, ERROR: `printed more than ${MAX_STDOUT} bytes` });
      const parsed = parseProbeOutput(Buffer.concat(chunks).toString('utf8'));
      const exit = code ?? 137;
      if (!parsed.ok) return resolve({ EXITCODE: exit, EXECUTION_TIME: ms, ERROR: `${parsed.error}${stderrTail ? `; stderr: ${stderrTail.trim().slice(-200)}` : ''}` });
      resolve({ ...parsed.value, EXITCODE: exit, EXECUTION_TIME: ms });
    };
    child.on('error', (err) => done(null, err));
    child.on('close', (code) => done(code));
  });
}

/** The environment the probes read their inputs from (probes/README.md lists the variables). */
export function probeEnv(o: RunOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(o.env ?? {}) };
  if (o.image !== undefined) env.SITESONAR_IMAGE = path.resolve(o.image);
  if (o.cvmfsRoot !== undefined) env.SITESONAR_CVMFS_ROOT = path.resolve(o.cvmfsRoot);
  if (o.cvmfsRepos?.length) env.SITESONAR_CVMFS_REPOS = o.cvmfsRepos.join(',');
  if (o.networkHost !== undefined) env.SITESONAR_NETWORK_HOST = o.networkHost;
  if (o.networkPort !== undefined) env.SITESONAR_NETWORK_PORT = String(o.networkPort);
  if (o.workdir !== undefined) env.SITESONAR_WORKDIR = path.resolve(o.workdir);
  return env;
}

/** Run the probes of a directory on this node: one upload document. */
export async function runProbes(o: RunOptions): Promise<Upload> {
  const available = listProbes(o.probesDir);
  const names = o.probes?.length ? o.probes : available;
  for (const n of names) {
    if (!available.includes(n)) throw new UsageError(`no probe "${n}" in ${o.probesDir}`, { where: n, hint: `choose from: ${available.join(', ')}` });
  }
  const env = probeEnv(o);
  const cwd = o.workdir ? path.resolve(o.workdir) : process.cwd();
  const results: Record<string, ProbeResult> = {};
  const queue = [...names];
  const worker = async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) results[n] = await runProbe(path.join(o.probesDir, `${n}.sh`), env, cwd, o.timeoutMs ?? PROBE_TIMEOUT_MS);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, names.length)) }, worker));
  const probes: Record<string, ProbeResult> = {};
  for (const n of names) probes[n] = results[n];
  return {
    schema: UPLOAD_SCHEMA,
    hostname: o.hostname ?? os.hostname(),
    site: o.site ?? process.env.ALIEN_SITE ?? 'unknown',
    ce: o.ce ?? process.env.CE_NAME ?? o.site ?? process.env.ALIEN_SITE ?? 'unknown',
    time: new Date().toISOString(),
    probes,
  };
}

/** POST one node's results to a `probe serve` endpoint (URL of the server, or of its /results). */
export async function uploadResults(url: string, upload: Upload): Promise<{ stored: number }> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--upload: "${url}" is not a URL`, { where: '--upload', hint: 'give the endpoint of `gridforge probe serve`, e.g. http://collector:8480' });
  }
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/results';
  let res: Response;
  try {
    res = await fetch(u, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(upload), signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new GridforgeError(`cannot upload to ${u}: ${(err as Error).message}`, { where: u.toString(), hint: 'check that `gridforge probe serve` runs there and is reachable' });
  }
  const text = await res.text();
  if (res.status !== 201) throw new GridforgeError(`upload to ${u} refused: HTTP ${res.status}: ${text.slice(0, 300)}`, { where: u.toString(), hint: 'the reason above says what the endpoint rejected' });
  return JSON.parse(text) as { stored: number };
}
