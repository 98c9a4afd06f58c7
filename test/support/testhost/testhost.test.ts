/**
 * The test-host helper itself: isolation (own sshd, dockerd, /etc/docker), reachability over SSH
 * with a pinned host key, a MACVLAN container answering a LAN client, and cleanup that leaves
 * nothing behind (also for a "killed run" via cleanupStale).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cleanupStale, createLan, createTestHost, TESTHOST_ROOT } from './index.ts';

const PREFIX = 'gfth';

async function leftovers(prefix: string): Promise<string[]> {
  const out: string[] = [];
  const ns = (await execa('ip', ['netns', 'list'])).stdout;
  if (ns.split('\n').some((l) => l.startsWith(`${prefix}-`))) out.push(`netns: ${ns}`);
  const links = (await execa('ip', ['-o', 'link'])).stdout.split('\n').filter((l) => l.includes(` ${prefix}`));
  if (links.length) out.push(`links: ${links.join('; ')}`);
  const rules = (await execa('iptables', ['-S', 'FORWARD'])).stdout.split('\n').filter((l) => l.includes(`${prefix}br`));
  if (rules.length) out.push(`iptables: ${rules.join('; ')}`);
  for (const c of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(`/sys/fs/cgroup/${c}`) && readdirSync(`/sys/fs/cgroup/${c}`).some((d) => d.startsWith(`${prefix}-`))) out.push(`cgroup ${c}`);
  }
  const ps = (await execa('sh', ['-c', `ps -eo args | grep ${TESTHOST_ROOT}/${prefix}/ | grep -v grep || true`])).stdout.trim();
  if (ps) out.push(`processes: ${ps}`);
  if (existsSync(`${TESTHOST_ROOT}/${prefix}`)) out.push('files');
  return out;
}

afterAll(async () => {
  await cleanupStale(PREFIX);
});

describe('test hosts', () => {
  it('is its own host: sshd with a pinned key, its own dockerd and /etc/docker; a MACVLAN container answers a LAN client; destroy leaves nothing', async () => {
    const machineDaemonJson = existsSync('/etc/docker/daemon.json') ? readFileSync('/etc/docker/daemon.json', 'utf8') : null;
    const lan = await createLan(PREFIX);
    try {
      const h = await createTestHost(lan, { name: 'h1' });
      const client = await lan.addClient('c1');
      const ssh = ['-i', h.identityFile, '-o', `UserKnownHostsFile=${h.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${h.address}`];
      const r = await execa('ssh', [...ssh, 'ip -o -4 addr show dev eth0; cat /etc/docker/daemon.json; docker info --format "{{.DockerRootDir}} {{.Containers}}"']);
      expect(r.stdout).toContain(`${h.address}/24`);
      // its own dockerd: no containers of the machine visible, its private daemon.json
      expect(r.stdout).toMatch(/\/var\/lib\/docker 0/);
      await h.exec(`echo '{"debug": true}' > /etc/docker/daemon.json`);
      expect(existsSync('/etc/docker/daemon.json') ? readFileSync('/etc/docker/daemon.json', 'utf8') : null).toBe(machineDaemonJson);
      // a wrong pinned key is refused by OpenSSH
      const bad = await execa('ssh', ['-i', h.identityFile, '-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${h.address}`, 'true'], { reject: false });
      expect(bad.exitCode).not.toBe(0);
      // image over SSH, MACVLAN container on eth0, seen from the LAN client with its MAC
      await execa('sh', ['-c', `docker save gridforge/base:debian-bookworm | ssh ${ssh.join(' ')} docker load -q`]);
      await h.exec(`docker network create -d macvlan --subnet ${lan.subnet} --gateway ${lan.gateway} -o parent=eth0 gfthnet`);
      const run = await h.exec(`docker run -d --name gfth-c --network gfthnet --ip ${lan.base}.77 gridforge/base:debian-bookworm sleep 600`);
      expect(run.code, run.stderr).toBe(0);
      const mac = (await h.exec(`docker inspect -f '{{(index .NetworkSettings.Networks "gfthnet").MacAddress}}' gfth-c`)).stdout.trim();
      const neigh = await client.exec(`ping -c 2 -W 2 ${lan.base}.77 >/dev/null; ip neigh show ${lan.base}.77`);
      expect(neigh.stdout).toContain(`lladdr ${mac}`);
      // restartDockerd keeps working
      const before = h.dockerdPid();
      await h.restartDockerd();
      expect(h.dockerdPid()).not.toBe(before);
      expect((await h.exec('docker version --format "{{.Server.APIVersion}}"')).stdout.trim()).toBe('1.41');
    } finally {
      await lan.destroy();
    }
    expect(await leftovers(PREFIX)).toEqual([]);
  });

  it('cleanupStale removes what a killed run left behind', async () => {
    const lan = await createLan(PREFIX);
    await createTestHost(lan, { name: 'h2' });
    await lan.addClient('c2');
    expect((await leftovers(PREFIX)).length).toBeGreaterThan(0);
    // no destroy(): as if the test process had been killed
    await cleanupStale(PREFIX);
    expect(await leftovers(PREFIX)).toEqual([]);
  });
});
