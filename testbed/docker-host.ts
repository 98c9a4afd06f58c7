/**
 * The VO-box host of the testbed: the namespace host of testbed/nshost.ts plus what `gridforge site
 * deploy` needs on a Docker host (as test/support/testhost/index.ts gives the deploy tests): private
 * /etc/docker, /etc/security/limits.d, /var/lib/docker and /var/lib/containerd, its own sshd (key
 * auth, the host key the site file pins) and its own dockerd (no bridge, no iptables; containers in
 * the host's cgroup through --cgroup-parent, so `testbed down` finds them too).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GridforgeError } from '../base/errors.ts';
import { hostExec, joinCgroup, sh, sleep } from './nshost.ts';
import type { HostRecord } from './state.ts';

const PRIVATE = [['etc-docker', '/etc/docker'], ['limits.d', '/etc/security/limits.d'], ['var-lib-docker', '/var/lib/docker'], ['var-lib-containerd', '/var/lib/containerd']] as const;

/** Boot lines for the holder: the private directories, and /cvmfs shared (the VO-box binds it with :shared). */
export function dockerHostBoot(root: string): string[] {
  for (const [d] of PRIVATE) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'etc-docker', 'daemon.json'), '{}\n');
  mkdirSync(join(root, 'run', 'sshd'), { recursive: true, mode: 0o755 });
  return [...PRIVATE.map(([src, dst]) => `mkdir -p ${dst} && mount --bind ${join(root, src)} ${dst}`), 'mount --make-shared /cvmfs'];
}

export interface DockerHostAccess { identityFile: string; socket: string }

/** Client key + authorized_keys, sshd with the pinned host key, dockerd; waits until both answer. */
export async function startDockerHost(h: HostRecord, root: string, hostKey: string): Promise<DockerHostAccess> {
  const id = join(root, 'id_ed25519');
  if (!existsSync(id)) await sh(`ssh-keygen -q -t ed25519 -N '' -C gridforge-testbed -f ${id}`);
  writeFileSync(join(root, 'authorized_keys'), readFileSync(`${id}.pub`));
  writeFileSync(
    join(root, 'sshd_config'),
    [`ListenAddress ${h.address}`, 'Port 22', `HostKey ${hostKey}`, 'PidFile /run/sshd.pid', 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
      'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', `AuthorizedKeysFile ${join(root, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no',
      'AllowStreamLocalForwarding yes', 'AllowTcpForwarding yes', 'MaxSessions 64', 'MaxStartups 64', ''].join('\n'),
  );
  const r = await hostExec(h, `/usr/sbin/sshd -f ${join(root, 'sshd_config')} -E ${join(root, 'sshd.log')}`);
  if (r.code !== 0) throw new GridforgeError(`testbed: sshd on ${h.name} did not start: ${r.stderr}`);
  const log = openSync(join(root, 'dockerd.log'), 'a');
  const child = spawn(
    'sh',
    ['-c', `${joinCgroup(h.netns)} exec nsenter -t ${h.holderPid} -n -m -u dockerd --data-root /var/lib/docker --exec-root /run/docker --pidfile /run/docker.pid -H unix:///run/docker.sock ` +
      `--config-file /etc/docker/daemon.json --bridge=none --iptables=false --ip-masq=false --userland-proxy=false --cgroup-parent=/${h.netns}/docker`],
    { detached: true, stdio: ['ignore', log, log] },
  );
  child.unref();
  closeSync(log);
  const socket = join(root, 'run', 'docker.sock');
  for (let i = 0; i < 600; i++) {
    if (existsSync(socket) && (await sh(`docker -H unix://${socket} version --format '{{.Server.APIVersion}}'`, { reject: false })).code === 0) {
      for (let j = 0; j < 100; j++) {
        if ((await hostExec(h, `bash -c "exec 3<>/dev/tcp/${h.address}/22"`)).code === 0) return { identityFile: id, socket };
        await sleep(50);
      }
      throw new GridforgeError(`testbed: sshd on ${h.name} does not answer: ${readFileSync(join(root, 'sshd.log'), 'utf8').slice(-800)}`);
    }
    await sleep(100);
  }
  throw new GridforgeError(`testbed: dockerd on ${h.name} did not come up: ${readFileSync(join(root, 'dockerd.log'), 'utf8').slice(-1500)}`);
}
