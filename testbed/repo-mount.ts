/**
 * The repository on the worker nodes: served with `gridforge repo serve` on the site LAN, and
 * mounted at /cvmfs/<repository name> in every worker node's mount namespace, either by the stock
 * cvmfs client (when `cvmfs2` is on PATH or in $GRIDFORGE_CVMFS_BIN) or as a read-only bind mount
 * of one checkout of the chosen revision (cvmfs-publish/checkout.ts), read from the served URL and
 * verified against the repository's master public key.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GridforgeError } from '../base/errors.ts';
import { shellQuote } from '../base/shell-quote.ts';
import { checkout, keyFiles, readRepoConfig } from '../cvmfs-publish/index.ts';
import { hostRun, joinCgroup, sleep } from './nshost.ts';
import type { HostRecord } from './state.ts';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'bin', 'gridforge.mjs');

export interface RepoInfo { dir: string; name: string; publicKey: string }

export function repoInfo(repoDir: string): RepoInfo {
  const dir = resolve(repoDir);
  const cfg = readRepoConfig(dir);
  return { dir, name: cfg.name, publicKey: keyFiles(cfg.keysDir, cfg.name).masterPub };
}

/** The stock cvmfs client, when this machine has one. */
export function findCvmfs2(): string | undefined {
  const fromEnv = process.env.GRIDFORGE_CVMFS_BIN;
  if (fromEnv) {
    const f = existsSync(join(fromEnv, 'cvmfs2')) ? join(fromEnv, 'cvmfs2') : fromEnv;
    if (existsSync(f) && !f.endsWith('/')) return f;
  }
  for (const d of (process.env.PATH ?? '').split(delimiter)) if (d && existsSync(join(d, 'cvmfs2'))) return join(d, 'cvmfs2');
  return undefined;
}

/** `gridforge repo serve` on the LAN address, in its own cgroup (so down can find it); returns pid + URL. */
export async function startServe(repo: RepoInfo, host: string, cgroup: string, logFile: string): Promise<{ pid: number; url: string }> {
  const port = 8000 + Math.floor(Math.random() * 1000);
  const log = openSync(logFile, 'a');
  const child = spawn(
    'sh',
    ['-c', `${joinCgroup(cgroup)} exec ${shellQuote(process.execPath)} ${shellQuote(CLI)} repo serve ${shellQuote(repo.dir)} --host ${host} --port ${port}`],
    { detached: true, stdio: ['ignore', log, log] },
  );
  child.unref();
  closeSync(log);
  const url = `http://${host}:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${url}/.cvmfspublished`);
      if (r.ok) return { pid: child.pid ?? 0, url };
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new GridforgeError(`testbed: repo serve did not answer on ${url}: ${readFileSync(logFile, 'utf8').slice(-800)}`);
}

/** One checkout of the revision (tag) from the served URL. */
export async function checkoutRevision(url: string, repo: RepoInfo, dest: string, tag?: string): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  await checkout(url, dest, { tag, publicKey: repo.publicKey });
}

/** Bind the checkout read-only at /cvmfs/<name> in a worker node. */
export async function mountCheckout(h: HostRecord, src: string, name: string): Promise<void> {
  const dst = `/cvmfs/${name}`;
  await hostRun(h, `mkdir -p ${dst} && mount --bind ${shellQuote(src)} ${dst} && mount -o remount,bind,ro ${dst}`);
}

/**
 * Mount with the stock client: config, cache and sockets of the worker's own (under its directory and
 * private /run); `CVMFS_REPOSITORY_TAG` pins the revision. cvmfs2 dlopens its fuse stub library from
 * the working directory or /usr/lib, so it runs in the lib/ beside its bin/ when that exists (a
 * client built into a prefix, like /work/cvmfs-stock/install/usr).
 */
export async function mountCvmfs2(h: HostRecord, cvmfs2: string, url: string, repo: RepoInfo, hostDir: string, tag?: string): Promise<void> {
  const conf = join(hostDir, 'cvmfs.conf');
  writeFileSync(
    conf,
    [`CVMFS_SERVER_URL=${url}`, `CVMFS_PUBLIC_KEY=${repo.publicKey}`, 'CVMFS_HTTP_PROXY=DIRECT', `CVMFS_CACHE_BASE=${join(hostDir, 'cvmfs-cache')}`,
      'CVMFS_RELOAD_SOCKETS=/run/cvmfs', 'CVMFS_SHARED_CACHE=no', 'CVMFS_USER=root', ...(tag ? [`CVMFS_REPOSITORY_TAG=${tag}`] : []), ''].join('\n'),
  );
  const lib = resolve(dirname(cvmfs2), '..', 'lib');
  const env = existsSync(lib) ? `cd ${shellQuote(lib)} && LD_LIBRARY_PATH=${shellQuote(lib)} ` : '';
  await hostRun(h, `mkdir -p /cvmfs/${repo.name} /run/cvmfs && ${env}${shellQuote(cvmfs2)} -o config=${shellQuote(conf)},fsname=cvmfs2,allow_other ${repo.name} /cvmfs/${repo.name}`, { timeoutMs: 60_000 });
}
