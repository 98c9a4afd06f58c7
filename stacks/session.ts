/**
 * A session with one Docker host: the SSH connection, the Docker API through the forwarded socket
 * (version negotiated), and the host facts every step needs, read in one round trip.
 */
import { GridforgeError } from '../base/errors.ts';
import { shellQuote } from '../base/shell-quote.ts';
import { DockerApi } from './docker-api.ts';
import { SshHost } from './ssh.ts';
import type { SiteSpec } from './spec.ts';

export interface HostState {
  kernel: string;
  dockerdPid: number | null;
  dockerdNofile: number | null;
  containerdNofile: number | null;
  nrOpen: number;
  fileMax: number;
  systemd: boolean;
  cvmfsClient: boolean;
  maxUserNamespaces: number | null;
  unprivilegedUsernsClone: number | null;
  parentState: string | null;
  diskFreeKb: number | null;
  daemonJsonText: string | null;
  limitsText: string | null;
  cvmfsLocalText: string | null;
  dropIns: Record<string, string | null>;
  /** Of the directories asked for, those that do not exist. */
  missingDirs: string[];
  /** Whether the host-side macvlan shim interface exists (null: not asked). */
  shimPresent: boolean | null;
}

/** What readHostState reads besides the fixed facts: the files and directories the resources manage. */
export interface HostReads {
  limits: string;
  cvmfsLocal: string;
  dropIns: string[];
  dataRoot?: string;
  dirs?: string[];
  /** Name of the shim interface to look for. */
  shim?: string;
}

export interface Session {
  spec: SiteSpec;
  ssh: SshHost;
  docker: DockerApi;
  api: { apiVersion: string; serverVersion: string };
  close(): void;
}

export async function openSession(spec: SiteSpec): Promise<Session> {
  const ssh = await SshHost.connect(spec);
  try {
    const docker = new DockerApi(() => ssh.forwardUnix(spec.host.dockerSocket), `${ssh.label} ${spec.host.dockerSocket}`);
    let v;
    try {
      v = await docker.negotiate();
    } catch (err) {
      throw new GridforgeError(`no Docker engine answers on ${spec.host.dockerSocket} at ${ssh.label}: ${(err as Error).message}`, {
        where: ssh.label,
        hint: 'Install and start Docker on the host (or fix host.dockerSocket).',
      });
    }
    return { spec, ssh, docker, api: { apiVersion: v.apiVersion, serverVersion: v.serverVersion }, close: () => ssh.close() };
  } catch (err) {
    ssh.close();
    throw err;
  }
}

const MARK = '__GF_SECTION__';

/** Read all host facts in one SSH round trip. */
export async function readHostState(s: Session, paths: HostReads): Promise<HostState> {
  const parent = s.spec.vobox.network.parent;
  const cat = (p: string) => `cat ${shellQuote(p)} 2>/dev/null || echo __GF_MISSING__`;
  const sec = (name: string, cmd: string) => `echo ${MARK}${name}; ${cmd}`;
  const script = [
    sec('kernel', 'uname -r'),
    sec('dockerd_pid', 'p=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd 2>/dev/null | cut -d" " -f1); echo $p'),
    sec('dockerd_nofile', 'p=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd 2>/dev/null | cut -d" " -f1); [ -n "$p" ] && awk \'/Max open files/{print $5}\' /proc/$p/limits'),
    // containerd: dockerd's own (managed) child first, else the system one.
    sec('containerd_nofile', 'd=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd 2>/dev/null | cut -d" " -f1); p=$( [ -n "$d" ] && pgrep -P "$d" -x containerd | head -1); [ -n "$p" ] || p=$(pidof containerd 2>/dev/null | cut -d" " -f1); [ -n "$p" ] && awk \'/Max open files/{print $5}\' /proc/$p/limits'),
    sec('nr_open', 'cat /proc/sys/fs/nr_open'),
    sec('file_max', 'cat /proc/sys/fs/file-max'),
    sec('systemd', '[ -d /run/systemd/system ] && echo 1 || echo 0'),
    sec('cvmfs_client', '{ command -v cvmfs2 || command -v cvmfs_config || [ -d /etc/cvmfs ]; } >/dev/null 2>&1 && echo 1 || echo 0'),
    sec('userns', 'cat /proc/sys/user/max_user_namespaces 2>/dev/null'),
    sec('userns_clone', 'cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null'),
    sec('parent', `cat ${shellQuote(`/sys/class/net/${parent}/operstate`)} 2>/dev/null`),
    sec('disk', `df -Pk ${shellQuote(paths.dataRoot ?? '/var/lib/docker')} 2>/dev/null | awk 'NR==2{print $4}'`),
    sec('daemon_json', cat('/etc/docker/daemon.json')),
    sec('limits', cat(paths.limits)),
    sec('cvmfs_local', cat(paths.cvmfsLocal)),
    ...paths.dropIns.map((p, i) => sec(`dropin${i}`, cat(p))),
    sec('missing_dirs', (paths.dirs ?? []).map((d) => `[ -d ${shellQuote(d)} ] || printf '%s\\n' ${shellQuote(d)}`).join('; ') || 'true'),
    sec('shim', paths.shim ? `ip -o link show dev ${shellQuote(paths.shim)} >/dev/null 2>&1 && echo 1 || echo 0` : 'true'),
  ].join('\n');
  const r = await s.ssh.exec(`sh -c '${script.replace(/'/g, `'\\''`)}'`);
  const parts: Record<string, string> = {};
  for (const chunk of r.stdout.split(MARK).slice(1)) {
    const nl = chunk.indexOf('\n');
    const name = nl < 0 ? chunk : chunk.slice(0, nl);
    parts[name] = nl < 0 ? '' : chunk.slice(nl + 1);
  }
  const num = (k: string) => {
    const t = (parts[k] ?? '').trim();
    if (!t) return null;
    if (t === 'unlimited') return Number.MAX_SAFE_INTEGER;
    const n = Number(t);
    return Number.isFinite(n) ? n : null;
  };
  const text = (k: string) => {
    const t = parts[k] ?? '';
    return t.trim() === '__GF_MISSING__' ? null : t;
  };
  const dropIns: Record<string, string | null> = {};
  paths.dropIns.forEach((p, i) => (dropIns[p] = text(`dropin${i}`)));
  return {
    kernel: (parts.kernel ?? '').trim(),
    dockerdPid: num('dockerd_pid'),
    dockerdNofile: num('dockerd_nofile'),
    containerdNofile: num('containerd_nofile'),
    nrOpen: num('nr_open') ?? 1048576,
    fileMax: num('file_max') ?? 0,
    systemd: (parts.systemd ?? '').trim() === '1',
    cvmfsClient: (parts.cvmfs_client ?? '').trim() === '1',
    maxUserNamespaces: num('userns'),
    unprivilegedUsernsClone: num('userns_clone'),
    parentState: (parts.parent ?? '').trim() || null,
    diskFreeKb: num('disk'),
    daemonJsonText: text('daemon_json'),
    limitsText: text('limits'),
    cvmfsLocalText: text('cvmfs_local'),
    dropIns,
    missingDirs: (parts.missing_dirs ?? '').split('\n').filter(Boolean),
    shimPresent: paths.shim ? (parts.shim ?? '').trim() === '1' : null,
  };
}

/** The highest nofile a container can get on this host. */
export function nofileMax(h: HostState): number {
  return Math.min(h.dockerdNofile ?? h.nrOpen, h.containerdNofile ?? h.nrOpen, h.nrOpen);
}
