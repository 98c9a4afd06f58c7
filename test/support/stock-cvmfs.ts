/**
 * The stock CernVM-FS tools (`cvmfs2`, `cvmfs_swissknife`, built from github.com/cvmfs/cvmfs; not
 * in Debian) as an oracle for gridforge's repositories: where they are (PATH or
 * GRIDFORGE_CVMFS_BIN), a client mount without the cvmfs_config machinery, a Stratum-1 replica made
 * with `cvmfs_swissknife pull` the way cvmfs/server/cvmfs_server_snapshot.sh calls it, and
 * `cvmfs_swissknife check`. How to build and use them: cvmfs-publish/README.md, "Mounting with the
 * stock cvmfs client".
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface StockCvmfs {
  cvmfs2: string;
  swissknife: string;
  /** environment for both: CVMFS_LIBRARY_PATH (cvmfs/loader.cc dlopens libcvmfs_fuse3.so there) and LD_LIBRARY_PATH */
  env: NodeJS.ProcessEnv;
  /** why this process cannot FUSE-mount (then only swissknife checks run), or undefined */
  mountBlocker?: string;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function executableIn(dir: string, name: string): string | undefined {
  const p = path.join(dir, name);
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile() ? p : undefined;
  } catch {
    return undefined;
  }
}

function findTool(name: string): string | undefined {
  const dirs = [process.env.GRIDFORGE_CVMFS_BIN ?? '', ...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const d of dirs.filter(Boolean)) {
    const p = executableIn(d, name);
    if (p) return p;
  }
  return undefined;
}

/** The libraries beside an installed binary: `<prefix>/bin/x` -> `<prefix>/lib` or `<prefix>/lib64`. */
function libDirsOf(binary: string): string[] {
  const prefix = path.dirname(path.dirname(fs.realpathSync(binary)));
  return ['lib', 'lib64', 'lib/x86_64-linux-gnu'].map((l) => path.join(prefix, l)).filter((d) => fs.existsSync(d));
}

function whyNoMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (cvmfs2 mounts with CVMFS_USER=root here)';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse in this machine';
  return undefined;
}

export function findStockCvmfs(): StockCvmfs | undefined {
  const cvmfs2 = findTool('cvmfs2');
  const swissknife = findTool('cvmfs_swissknife');
  if (!cvmfs2 || !swissknife) return undefined;
  const libs = [...new Set([...libDirsOf(cvmfs2), ...libDirsOf(swissknife)])];
  const ld = [...libs, ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)].join(':');
  const env = { ...process.env, LD_LIBRARY_PATH: ld, ...(libs[0] ? { CVMFS_LIBRARY_PATH: libs[0] } : {}) };
  return { cvmfs2, swissknife, env, mountBlocker: whyNoMount() };
}

/** The line a suite prints when the tools are absent, so the skip shows in its output. */
export function skipNote(what: string): string {
  const line = `stock cvmfs tools not found (set GRIDFORGE_CVMFS_BIN): skipped ${what}`;
  console.log(line);
  return line;
}

/** Run a program without blocking the event loop (servers of the same test may be in-process). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(err) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

export function swissknife(tools: StockCvmfs, args: string[], timeoutMs = 120_000): Promise<Run> {
  return run(tools.swissknife, args, { env: tools.env, timeoutMs });
}

export interface MountSpec {
  fqrn: string;
  url: string;
  publicKey: string;
  /** a fresh directory for config, cache, log and the mount point */
  workDir: string;
  /** CVMFS_REPOSITORY_TAG: mount this named snapshot instead of the newest revision */
  tag?: string;
}

/**
 * The client configuration a standalone `cvmfs2 -o config=<file>` needs (no /etc/cvmfs): where the
 * repository is, its master key, no proxy, a private cache (not shared, no quota manager process),
 * the log in a file (CVMFS_USYSLOG) instead of syslog, and no magic xattrs in listxattr so that
 * `getfattr -d` shows exactly the published ones.
 */
export function clientConfig(spec: MountSpec): string {
  const lines = [
    `CVMFS_SERVER_URL=${spec.url}`,
    `CVMFS_PUBLIC_KEY=${spec.publicKey}`,
    'CVMFS_HTTP_PROXY=DIRECT',
    `CVMFS_CACHE_BASE=${path.join(spec.workDir, 'cache')}`,
    `CVMFS_RELOAD_SOCKETS=${path.join(spec.workDir, 'cache')}`,
    'CVMFS_SHARED_CACHE=no',
    'CVMFS_QUOTA_LIMIT=-1',
    'CVMFS_USER=root',
    'CVMFS_HIDE_MAGIC_XATTRS=yes',
    'CVMFS_TIMEOUT_DIRECT=10',
    'CVMFS_MAX_RETRIES=1',
    `CVMFS_USYSLOG=${path.join(spec.workDir, 'client.log')}`,
    ...(spec.tag ? [`CVMFS_REPOSITORY_TAG=${spec.tag}`] : []),
  ];
  return lines.join('\n') + '\n';
}

export interface Mounted {
  dir: string;
  /** the client's own log (CVMFS_USYSLOG) so far */
  log(): string;
  unmount(): Promise<void>;
}

/** Mount `spec` with the stock client; resolves with the mount or rejects with everything cvmfs2 said. */
export async function mountStock(tools: StockCvmfs, spec: MountSpec): Promise<Mounted> {
  const dir = path.join(spec.workDir, 'mnt');
  fs.mkdirSync(path.join(spec.workDir, 'cache'), { recursive: true });
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(spec.workDir, 'client.conf');
  fs.writeFileSync(config, clientConfig(spec));
  const logFile = path.join(spec.workDir, 'client.log');
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  const r = await run(tools.cvmfs2, ['-o', `config=${config},fsname=cvmfs2`, spec.fqrn, dir], { env: tools.env, timeoutMs: 90_000 });
  const unmount = async () => {
    await unmountDir(dir);
    await waitForClientExit(config);
  };
  if (r.code !== 0) {
    await unmount();
    throw new Error(`cvmfs2 mount of ${spec.url}${spec.tag ? ` (tag ${spec.tag})` : ''} failed (exit ${r.code}):\n${r.stdout}${r.stderr}\nclient log:\n${log()}`);
  }
  return { dir, log, unmount };
}

/** Unmount if mounted (umount, then a lazy umount if busy). */
export async function unmountDir(dir: string): Promise<void> {
  const mounted = () => fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
  if (!mounted()) return;
  const r = await run('umount', [dir], { timeoutMs: 30_000 });
  if (r.code !== 0 && mounted()) await run('umount', ['-l', dir], { timeoutMs: 30_000 });
}

/** The daemonised cvmfs2 (and its watchdog) of one mount: the processes started with its config file. */
function clientPids(config: string): number[] {
  const arg = `config=${config},`;
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith(arg))) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** After the unmount the client exits by itself (and writes its last log lines): wait, then end it by pid. */
async function waitForClientExit(config: string): Promise<void> {
  for (let i = 0; i < 100 && clientPids(config).length; i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of clientPids(config)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** An empty Stratum-1 storage: data/00..ff and data/txn (cvmfs_server_common.sh create_repository_skeleton). */
export function replicaSkeleton(dir: string): void {
  for (let i = 0; i < 256; i++) fs.mkdirSync(path.join(dir, 'data', i.toString(16).padStart(2, '0')), { recursive: true });
  fs.mkdirSync(path.join(dir, 'data', 'txn'), { recursive: true });
}

export interface PullSpec {
  fqrn: string;
  stratum0Url: string;
  replicaDir: string;
  /** where the replica is served (pull reads its reflog from there after the first snapshot) */
  replicaUrl: string;
  publicKey: string;
  /** file holding the replica's reflog checksum (cvmfs_server keeps it in the spool dir) */
  reflogChecksum: string;
  initial: boolean;
}

/** The arguments `cvmfs_server snapshot` passes (cvmfs/server/cvmfs_server_snapshot.sh). */
export function pullArgs(spec: PullSpec): string[] {
  const txn = path.join(spec.replicaDir, 'data', 'txn');
  return [
    'pull', '-m', spec.fqrn, '-u', spec.stratum0Url, '-w', spec.replicaUrl,
    '-r', `local,${txn},${spec.replicaDir}`, '-x', txn, '-k', spec.publicKey,
    '-n', '4', '-t', '30', '-a', '1', '-R', spec.reflogChecksum,
    ...(spec.initial ? ['-i'] : ['-p']),
  ];
}

export function pullReplica(tools: StockCvmfs, spec: PullSpec): Promise<Run> {
  return swissknife(tools, pullArgs(spec), 180_000);
}

/** `cvmfs_swissknife check`: over HTTP it also checks the signatures (-k, -N); -c: every data chunk exists. */
/** A replica serves the Stratum-0 manifest, whose reflog hash is the Stratum-0's: pass the replica's own (`reflogChecksum`, -R). */
export function checkRepository(tools: StockCvmfs, opts: { dirOrUrl: string; fqrn: string; publicKey: string; tempDir: string; tag?: string; reflogChecksum?: string }): Promise<Run> {
  const args = [
    'check', '-c', '-r', opts.dirOrUrl, '-k', opts.publicKey, '-N', opts.fqrn, '-t', opts.tempDir,
    ...(opts.tag ? ['-n', opts.tag] : []), ...(opts.reflogChecksum ? ['-R', opts.reflogChecksum] : []),
  ];
  return swissknife(tools, args, 180_000);
}

/** `cvmfs_swissknife lsrepo`: the mount points of every catalog of the current revision (`/` for the root), one a line. */
export async function listCatalogs(tools: StockCvmfs, opts: { url: string; fqrn: string; publicKey: string; tempDir: string }): Promise<Run & { catalogs: string[] }> {
  const r = await swissknife(tools, ['lsrepo', '-r', opts.url, '-n', opts.fqrn, '-k', opts.publicKey, '-l', opts.tempDir]);
  return { ...r, catalogs: r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/')).sort() };
}

export interface Served {
  url: string;
  stop(): Promise<void>;
}

/** Start a server process and wait for the line that names its port or URL. */
export function startServer(cmd: string, args: string[], found: RegExp, toUrl: (m: RegExpMatchArray) => string): Promise<Served> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRIDFORGE_QUIET: '1', PYTHONUNBUFFERED: '1' } });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let ready = false;
    const onData = (b: Buffer) => {
      if (ready) return; // keep draining the pipes (request logs) without keeping them
      out += b.toString();
      const m = out.match(found);
      if (m) {
        ready = true;
        resolve({ url: toUrl(m), stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited (${code}) before serving: ${out}`)));
  });
}

/** A plain static file server for a replica directory (Python's http.server, as any web server would). */
export function serveStatic(dir: string): Promise<Served> {
  return startServer('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', dir, '0'], /port (\d+)/, (m) => `http://127.0.0.1:${m[1]}`);
}
