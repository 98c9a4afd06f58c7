/**
 * `site check`: preflight table (pass / warn / fail, each with its fix). Reads only.
 */
import { shellQuote } from '../base/shell-quote.ts';
import { apiAtLeast } from './docker-api.ts';
import { probePrivileged } from './resources/container.ts';
import { addressUsers, networkMismatch } from './resources/network.ts';
import { openSession, readHostState, nofileMax } from './session.ts';
import { deriveSettings } from './settings.ts';
import type { SiteSpec } from './spec.ts';

export interface PreflightRow {
  check: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

export async function preflight(spec: SiteSpec): Promise<{ host: string; rows: PreflightRow[]; ok: boolean }> {
  const rows: PreflightRow[] = [];
  const add = (check: string, status: PreflightRow['status'], detail: string, fix?: string) => rows.push({ check, status, detail, fix });
  const s = await openSession(spec);
  try {
    add('ssh', 'pass', `${s.ssh.label}, host key pinned`);
    const base = deriveSettings(spec);
    const h = await readHostState(s, { limits: base.host.limitsFile.path, cvmfsLocal: base.host.cvmfsDefaultLocal.path, dropIns: base.host.systemdDropIns.map((d) => d.path) });
    const [maj, min] = h.kernel.split('.').map(Number);
    add('kernel', maj > 4 || (maj === 4 && min >= 18) ? 'pass' : 'warn', h.kernel, maj > 4 || (maj === 4 && min >= 18) ? undefined : 'Use a kernel >= 4.18 (macvlan, user namespaces, overlayfs as Docker expects).');
    const mac = apiAtLeast(s.api.apiVersion, '1.44') ? 'per-network MAC (API >= 1.44)' : 'container-level MAC (API < 1.44)';
    add('docker engine', 'pass', `Docker ${s.api.serverVersion}, API ${s.api.apiVersion}; using ${mac}`);
    const info = (await s.docker.call('GET', '/info')).data;
    add('live-restore', info.LiveRestoreEnabled ? 'pass' : 'warn', info.LiveRestoreEnabled ? 'enabled' : 'disabled', info.LiveRestoreEnabled ? undefined : 'deploy merges "live-restore": true into daemon.json and reloads dockerd (SIGHUP).');
    // Privileged containers.
    const images = (await s.docker.call('GET', '/images/json')).data as any[];
    const probeImage = images.find((i) => (i.RepoTags ?? []).includes(spec.vobox.image))?.Id ?? images[0]?.Id;
    if (!probeImage) add('privileged containers', spec.vobox.privileged ? 'warn' : 'pass', 'not probed: no image on the host yet', spec.vobox.privileged ? 'deploy probes after loading the image and fails with a fix if refused.' : undefined);
    else {
      const p = await probePrivileged(s.docker, probeImage, `${spec.vobox.name}`);
      if (p.ok) add('privileged containers', 'pass', 'can start');
      else
        add(
          'privileged containers',
          spec.vobox.privileged ? 'fail' : 'pass',
          `refused by this host (${p.error?.split(':').slice(-2).join(':').trim()})${spec.vobox.privileged ? '' : '; the spec uses a capability list'}`,
          spec.vobox.privileged ? 'Replace `privileged: true` with capabilities: [NET_ADMIN, ...].' : undefined,
        );
    }
    // nofile.
    const max = h.systemd ? h.nrOpen : nofileMax(h);
    const req = spec.vobox.limits.nofile;
    const eng = `dockerd hard ${h.dockerdNofile ?? '?'}, containerd hard ${h.containerdNofile ?? '(managed by dockerd)'}, fs.nr_open ${h.nrOpen}`;
    if (req <= max) add('nofile limit', 'pass', `${req} requested; ${eng}${h.systemd ? '; systemd drop-ins raise the engine limit' : ''}`);
    else add('nofile limit', 'warn', `${req} requested but at most ${max} achievable (${eng}); deploy clamps to ${max}`, h.systemd ? `Raise fs.nr_open to ${req}.` : `Raise the hard nofile limit of dockerd/containerd (init system) and fs.nr_open to ${req}, or lower vobox.limits.nofile.`);
    // Network.
    const parent = spec.vobox.network.parent;
    if (h.parentState === null) add('parent interface', 'fail', `${parent} not found`, `Set vobox.network.parent to the host's LAN interface (ip -br link).`);
    else add('parent interface', h.parentState === 'up' || h.parentState === 'unknown' ? 'pass' : 'warn', `${parent} ${h.parentState}`, h.parentState === 'up' ? undefined : `Bring ${parent} up.`);
    const net = await s.docker.inspectNetwork(spec.vobox.network.name);
    const users = addressUsers(base, net);
    // Another machine on the LAN with this address? (the host cannot reach its own macvlan
    // children, so an answer comes from someone else; our own VO-box is skipped)
    const ours = users.others !== Object.keys(net?.Containers ?? {}).length;
    const ip = spec.vobox.network.ip;
    const qip = shellQuote(ip);
    const lan = ours ? { stdout: 'skipped' } : await s.ssh.exec(`command -v ping >/dev/null || { echo noping; exit 0; }; ping -c 1 -W 1 ${qip} >/dev/null 2>&1 && echo answers; ip neigh show ${qip} 2>/dev/null | grep lladdr`);
    if (users.ip) add('ip address', 'fail', `${ip} is used by container ${users.ip.name}`, 'Pick a free address in vobox.network.ip.');
    else if (lan.stdout.includes('answers'))
      add('ip address', 'fail', `${ip} answers on the LAN (${lan.stdout.split('\n').find((l) => l.includes('lladdr'))?.trim() ?? 'another machine'})`, 'Pick a free address in vobox.network.ip (ask the site network admins).');
    else add('ip address', 'pass', `${ip} in ${spec.vobox.network.subnet}, not the gateway, not used on this host's network${lan.stdout.includes('noping') ? ' (no ping on the host: LAN not probed)' : ours ? '' : ', no answer on the LAN'}`);
    if (users.mac) add('mac address', 'fail', `${spec.vobox.network.mac} is used by container ${users.mac.name}`, 'Pick another vobox.network.mac.');
    else add('mac address', 'pass', `${spec.vobox.network.mac} valid unicast`);
    add('hostname', 'pass', `${spec.vobox.hostname} fully qualified`);
    if (net && networkMismatch(base, net).some((m) => !m.startsWith('gateway')))
      add('docker network', 'fail', `${spec.vobox.network.name} exists with driver ${net.Driver}, parent ${net.Options?.parent}, subnet ${net.IPAM?.Config?.[0]?.Subnet}`, 'Fix vobox.network or deploy with --recreate-network.');
    else add('docker network', 'pass', net ? `${spec.vobox.network.name} matches` : `${spec.vobox.network.name} will be created`);
    // CVMFS.
    const mount = spec.vobox.cvmfs.mount;
    // The mount point as a fixed string between the spaces of /proc/mounts (no regex, one quoted word).
    const fs = await s.ssh.exec(`stat -f -c %T ${shellQuote(mount)} 2>/dev/null; grep -F -e ${shellQuote(` ${mount} `)} /proc/mounts | awk '{print $3}' | head -1`);
    const autofs = fs.stdout.includes('autofs');
    for (const repo of spec.vobox.cvmfs.repositories) {
      const r = await s.ssh.exec(`ls ${shellQuote(`${mount}/${repo}`)}/ 2>&1 | head -3`);
      const ok = r.code === 0 && !/No such file|cannot access|Too many levels/.test(r.stdout);
      add(`cvmfs ${repo}`, ok ? 'pass' : 'fail', ok ? `${mount}/${repo} mounted${autofs ? ' (autofs: deploy triggers the mount before the container starts)' : ''}` : `${mount}/${repo} not available: ${r.stdout.trim().split('\n')[0] ?? ''}`, ok ? undefined : `Install and configure the cvmfs client (CVMFS_REPOSITORIES=${repo}) and check \`cvmfs_config probe ${repo}\`.`);
    }
    // User namespaces (job containers need them).
    const userns = (h.maxUserNamespaces ?? 0) > 0 && h.unprivilegedUsernsClone !== 0;
    add('user namespaces', userns ? 'pass' : 'warn', `user.max_user_namespaces=${h.maxUserNamespaces ?? '?'}${h.unprivilegedUsernsClone !== null ? `, kernel.unprivileged_userns_clone=${h.unprivilegedUsernsClone}` : ''}`, userns ? undefined : 'Enable them: sysctl user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 on Debian kernels).');
    const gb = h.diskFreeKb !== null ? h.diskFreeKb / 1024 / 1024 : null;
    add('disk space', gb === null ? 'warn' : gb >= 10 ? 'pass' : gb >= 3 ? 'warn' : 'fail', gb === null ? 'unknown' : `${gb.toFixed(1)} GiB free for /var/lib/docker`, gb !== null && gb >= 10 ? undefined : 'Free space: the VO-box image needs a few GiB plus logs.');
    return { host: s.ssh.label, rows, ok: !rows.some((r) => r.status === 'fail') };
  } finally {
    s.close();
  }
}
