/**
 * The real thing: the real VO-box image deployed over SSH to a test host (own netns + mountns, own
 * sshd and dockerd 20.10) on a test LAN; a LAN client namespace checks the VO-box answers at its IP
 * with its MAC. Every check reads the host independently (nsenter + docker/curl), not through the
 * engine under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, createLan, createTestHost, type Lan, type LanClient, type TestHost } from '../../support/testhost/index.ts';
import { initRepository, publishTree, checkout } from '../../../cvmfs-publish/index.ts';
import { deploySite, loadSiteSpec } from '../../../stacks/index.ts';
import { buildVoboxImage, cli, siteDoc, snapshot, writeSite, type SiteOpts } from './helpers.ts';

const PREFIX = 'gfdt';
let lan: Lan;
let host: TestHost;
let client: LanClient;
let image: string;
let work: string;
let siteFile: string;

const site = (o: SiteOpts = {}) => writeSite(siteFile, siteDoc(lan, host, image, join(work, 'vol'), o));

async function inVobox(cmd: string, name = 'gfdt-vobox') {
  return host.exec(`docker exec ${name} sh -c ${JSON.stringify(cmd)}`);
}

async function inspect(name = 'gfdt-vobox'): Promise<any> {
  const r = await host.exec(`curl -s --unix-socket /run/docker.sock http://d/containers/${name}/json`);
  return JSON.parse(r.stdout);
}

async function lanSees(ip: string): Promise<string | null> {
  const r = await client.exec(`ip neigh flush dev eth0; ping -c 2 -W 2 ${ip} >/dev/null; ip neigh show ${ip}`);
  const m = /lladdr ([0-9a-f:]+)/.exec(r.stdout);
  return m ? m[1] : null;
}

async function supervisorStates(name = 'gfdt-vobox'): Promise<Record<string, string>> {
  const r = await inVobox('supervisorctl status', name);
  const out: Record<string, string> = {};
  for (const l of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(\S+)/.exec(l);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

beforeAll(async () => {
  await cleanupStale(PREFIX);
  work = mkdtempSync(join(tmpdir(), 'gfdt-'));
  siteFile = join(work, 'sites', 'gfdt.yaml');
  image = await buildVoboxImage();
  lan = await createLan(PREFIX);
  host = await createTestHost(lan, { name: 'h1' });
  client = await lan.addClient('c1');
  // /cvmfs on the test host: a checkout of a real repository written by the repository capability.
  const repo = join(work, 'repo');
  const src = join(work, 'src', 'etc');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'gfdt-marker'), 'published by the deploy test\n');
  await initRepository(repo, { name: 'alice.cern.ch', keysDir: join(work, 'keys') });
  await publishTree(repo, join(work, 'src', 'etc'), 'etc', { message: 'deploy test' });
  await checkout(repo, join(host.cvmfsDir, 'alice.cern.ch'), { publicKey: undefined } as never);
}, 600_000);

afterAll(async () => {
  await lan?.destroy().catch(() => {});
  await cleanupStale(PREFIX).catch(() => {});
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('site deploy to a test host', () => {
  it('refuses bad input with exit 2 naming the key, and leaves the host unchanged', async () => {
    const before = await snapshot(host);
    const cases: [SiteOpts | string, RegExp][] = [
      [{ subnet: '10.1.2.3/24' }, /vobox\.network\.subnet/],
      [{ ip: 300 }, /vobox\.network\.ip/],
      [{ services: ['cron', 'ftp'] }, /vobox\.services\.1: unknown service/],
      [{ mac: '03:00:00:00:00:01' }, /vobox\.network\.mac: MAC must be unicast/],
    ];
    for (const [o, re] of cases) {
      site(o as SiteOpts);
      const r = await cli(['site', 'deploy', siteFile, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).toMatch(/gfdt\.yaml/);
    }
    // IP outside the subnet.
    const doc = siteDoc(lan, host, image, join(work, 'vol')) as any;
    doc.vobox.network.ip = '192.168.77.5';
    writeSite(siteFile, doc);
    let r = await cli(['site', 'plan', siteFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/vobox\.network\.ip: 192\.168\.77\.5 is outside subnet/);
    // Duplicate IP / MAC across site files for the same host.
    site();
    writeSite(join(work, 'sites', 'other.yaml'), siteDoc(lan, host, image, join(work, 'vol'), { name: 'other-vobox', mac: '02:42:0a:01:02:99' }));
    r = await cli(['site', 'deploy', siteFile, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ip 10\.\d+\.\d+\.50 is also used by other\.yaml/);
    writeSite(join(work, 'sites', 'other.yaml'), siteDoc(lan, host, image, join(work, 'vol'), { name: 'other-vobox', ip: 60 }));
    r = await cli(['site', 'deploy', siteFile, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mac 02:42:0a:01:02:14 is also used by other\.yaml/);
    rmSync(join(work, 'sites', 'other.yaml'));
    // Unknown host key: refused with both fingerprints.
    const wrong = 'SHA256:' + 'A'.repeat(43);
    site({ hostKey: wrong });
    r = await cli(['site', 'deploy', siteFile, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(host.hostKeyFingerprint);
    expect(r.stderr).toContain(wrong);
    expect(r.stderr).toMatch(/host\.hostKey/);
    // Unreachable host.
    site({ address: `${lan.base}.249` });
    r = await cli(['site', 'check', siteFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach root@10\.\d+\.\d+\.249:22/);
    // An address another machine on the LAN answers to: preflight fails on it.
    site({ ip: Number(client.address.split('.')[3]) });
    r = await cli(['site', 'check', siteFile, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).rows.find((x: any) => x.check === 'ip address')).toMatchObject({ status: 'fail' });
    expect(JSON.parse(r.stdout).rows.find((x: any) => x.check === 'ip address').detail).toMatch(/answers on the LAN/);
    // Not on a terminal and no --yes: plan shown, refused.
    site();
    r = await cli(['site', 'deploy', siteFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs confirmation/);
    expect(r.stderr).toMatch(/create\s+container\s+gfdt-vobox/); // the plan is shown
    expect(await snapshot(host)).toBe(before);
  });

  it('check, plan, then deploy: VO-box healthy at its IP and MAC, clamped nofile, /cvmfs inside', async () => {
    site();
    const chk = await cli(['site', 'check', siteFile, '--json']);
    expect(chk.code, chk.stderr).toBe(0);
    const rows = JSON.parse(chk.stdout).rows as { check: string; status: string }[];
    expect(rows.find((x) => x.check === 'nofile limit')?.status).toBe('warn');
    expect(rows.find((x) => x.check === 'docker engine')?.status).toBe('pass');
    const plan = await cli(['site', 'plan', siteFile, '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout).changes as { kind: string; action: string; target: string }[];
    expect(planned.map((c) => c.kind)).toEqual(expect.arrayContaining(['daemon-json', 'limits', 'network', 'image', 'container']));
    const d = await cli(['site', 'deploy', siteFile, '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    const res = JSON.parse(d.stdout);
    // plan output matches what deploy did
    expect(res.changes.map((c: any) => [c.kind, c.action, c.target])).toEqual(planned.map((c) => [c.kind, c.action, c.target]));
    expect(res.health.healthy).toBe(true);
    // clamped with a warning (hard nofile 20000 here)
    expect(res.nofile).toEqual({ requested: 1048576, applied: 20000, clamped: true });
    expect(d.stderr).toMatch(/warning: nofile 1048576 requested.*clamped to 20000/);
    expect((await inVobox('ulimit -n')).stdout.trim()).toBe('20000');
    // every enabled service RUNNING (read independently)
    const st = await supervisorStates();
    for (const svc of ['cron', 'rsyslog', 'sshd']) expect(st[svc]).toBe('RUNNING');
    // LAN client sees it at its IP with its MAC
    expect(await lanSees(`${lan.base}.50`)).toBe('02:42:0a:01:02:14');
    // CVMFS checkout visible inside, JAliEn pin written, hostname
    expect((await inVobox('cat /cvmfs/alice.cern.ch/etc/gfdt-marker')).stdout).toBe('published by the deploy test');
    expect((await inVobox('cat /home/alicesgm/.jalien/version.properties')).stdout).toMatch(/JALIEN=2\.1\.3-1/);
    expect((await inVobox('hostname -f')).stdout.trim()).toBe('voboxgfdt.example.org');
    // host configuration
    const dj = JSON.parse((await host.exec('cat /etc/docker/daemon.json')).stdout);
    expect(dj['live-restore']).toBe(true);
    expect(dj['default-ulimits'].nofile.Hard).toBe(20000);
    expect((await host.exec('cat /etc/security/limits.d/90-gridforge-nofile.conf')).stdout).toMatch(/hard nofile 20000/);
    const info = JSON.parse((await host.exec('curl -s --unix-socket /run/docker.sock http://d/info')).stdout);
    expect(info.LiveRestoreEnabled).toBe(true);
  });

  it('a second deploy reports no changes, changes nothing, and is fast', async () => {
    const before = await inspect();
    const plan = await cli(['site', 'plan', siteFile]);
    expect(plan.stdout).toMatch(/no changes/);
    const d = await cli(['site', 'deploy', siteFile, '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    const res = JSON.parse(d.stdout);
    expect(res.changed).toBe(false);
    expect(res.changes).toEqual([]);
    expect(res.durationMs).toBeLessThan(3000); // the bar for a no-op deploy (engine time, CLI start excluded)
    const after = await inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
  });

  it('status and logs read the live state', async () => {
    const s = await cli(['site', 'status', siteFile, '--json']);
    expect(s.code, s.stderr).toBe(0);
    const st = JSON.parse(s.stdout);
    expect(st).toMatchObject({ exists: true, running: true, healthy: true, ip: `${lan.base}.50`, mac: '02:42:0a:01:02:14' });
    expect(st.services).toMatchObject({ cron: 'RUNNING', rsyslog: 'RUNNING', sshd: 'RUNNING' });
    const l = await cli(['site', 'logs', siteFile, 'sshd']);
    expect(l.code, l.stderr).toBe(0);
    const bad = await cli(['site', 'logs', siteFile, 'ftp']);
    expect(bad.code).toBe(2);
  });

  it('pins the host key through known_hosts files, plain and hashed', async () => {
    const hashed = join(work, 'known_hosts_hashed');
    writeFileSync(hashed, readFileSync(host.knownHosts));
    await execa('ssh-keygen', ['-H', '-f', hashed]);
    expect(readFileSync(hashed, 'utf8')).toMatch(/^\|1\|/);
    for (const kh of [host.knownHosts, hashed]) {
      const doc = siteDoc(lan, host, image, join(work, 'vol')) as any;
      delete doc.host.hostKey;
      doc.host.knownHosts = kh;
      writeSite(siteFile, doc);
      const r = await cli(['site', 'status', siteFile, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).healthy).toBe(true);
    }
    // a known_hosts file without this host: refused, with the presented fingerprint
    const doc = siteDoc(lan, host, image, join(work, 'vol')) as any;
    delete doc.host.hostKey;
    doc.host.knownHosts = join(work, 'empty_known_hosts');
    writeFileSync(doc.host.knownHosts, '');
    writeSite(siteFile, doc);
    const r = await cli(['site', 'status', siteFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(host.hostKeyFingerprint);
    expect(r.stderr).toMatch(/nothing for this host/);
    site();
  });

  it('privileged: true on a host that refuses privileged containers fails with the fix; the VO-box keeps running', async () => {
    const before = await inspect();
    const doc = siteDoc(lan, host, image, join(work, 'vol')) as any;
    doc.vobox.privileged = true;
    doc.vobox.capabilities = [];
    writeSite(siteFile, doc);
    const chk = await cli(['site', 'check', siteFile, '--json']);
    expect(chk.code).toBe(1);
    expect(JSON.parse(chk.stdout).rows.find((x: any) => x.check === 'privileged containers')).toMatchObject({ status: 'fail' });
    const d = await cli(['site', 'deploy', siteFile, '--yes']);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/refuses privileged containers/);
    expect(d.stderr).toMatch(/capabilities/);
    const after = await inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    site();
  });

  it('restarting the host dockerd keeps the VO-box running (live-restore)', async () => {
    const before = await inspect();
    const oldDockerd = host.dockerdPid();
    await host.restartDockerd();
    expect(host.dockerdPid()).not.toBe(oldDockerd);
    const after = await inspect();
    expect(after.State.Running).toBe(true);
    expect(after.State.Pid).toBe(before.State.Pid);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(await lanSees(`${lan.base}.50`)).toBe('02:42:0a:01:02:14');
  });

  it('a killed service is restarted by supervisord', async () => {
    const pid = (await inVobox('supervisorctl pid cron')).stdout.trim();
    expect(Number(pid)).toBeGreaterThan(1);
    await inVobox(`kill -9 ${pid}`);
    let now = '';
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const st = await supervisorStates();
      now = (await inVobox('supervisorctl pid cron')).stdout.trim();
      if (st.cron === 'RUNNING' && now !== pid && Number(now) > 1) break;
    }
    expect(Number(now)).toBeGreaterThan(1);
    expect(now).not.toBe(pid);
  });

  it('a changed IP is applied, exactly as planned', async () => {
    site({ ip: 51 });
    const plan = await cli(['site', 'plan', siteFile, '--json']);
    const planned = JSON.parse(plan.stdout).changes;
    expect(planned).toHaveLength(1);
    expect(planned[0]).toMatchObject({ kind: 'container', action: 'replace' });
    expect(planned[0].detail).toMatch(new RegExp(`ip ${lan.base.replace(/\./g, '\\.')}\\.50 -> ${lan.base.replace(/\./g, '\\.')}\\.51`));
    const d = await cli(['site', 'deploy', siteFile, '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).changes).toEqual(planned);
    expect(await lanSees(`${lan.base}.51`)).toBe('02:42:0a:01:02:14');
    expect(await lanSees(`${lan.base}.50`)).toBeNull();
    // the previous container is gone after a healthy deploy
    expect((await host.exec('docker ps -a --format "{{.Names}}"')).stdout.trim().split('\n')).toEqual(['gfdt-vobox']);
  });

  it('a failing health check restores the previous container', async () => {
    const before = await inspect();
    // Enabling the CE without alienv on /cvmfs makes it fail (FATAL) inside the new container.
    site({ ip: 51, services: ['ce', 'cron', 'rsyslog', 'sshd'] });
    const d = await cli(['site', 'deploy', siteFile, '--yes', '--health-timeout', '90']);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/not healthy: ce FATAL; the previous container was restored/);
    expect(d.stderr).toMatch(/alienv not found/); // the failing service's log tail
    const after = await inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.Running).toBe(true);
    expect(after.Config.Env).not.toContain('GRIDFORGE_SERVICES=ce,cron,rsyslog,sshd');
    const st = await supervisorStates();
    expect(st).toMatchObject({ cron: 'RUNNING', rsyslog: 'RUNNING', sshd: 'RUNNING' });
    expect((await host.exec('docker ps -a --format "{{.Names}}"')).stdout.trim().split('\n')).toEqual(['gfdt-vobox']);
    expect(await lanSees(`${lan.base}.51`)).toBe('02:42:0a:01:02:14');
  });

  it('a deploy whose signal aborts (a rollout deadline) stops at once with that reason; the next deploy makes the site healthy again', async () => {
    const before = await inspect();
    site({ ip: 51, services: ['ce', 'cron', 'rsyslog', 'sshd'] }); // a CE that never becomes healthy
    const ctl = new AbortController();
    const t0 = Date.now();
    const lines: string[] = [];
    const run = deploySite(loadSiteSpec(siteFile), {
      yes: true,
      healthTimeoutMs: 90_000,
      signal: ctl.signal,
      onProgress: (l) => {
        lines.push(l);
        if (l.startsWith('waiting until')) ctl.abort(new Error('deadline of the test rollout'));
      },
    });
    await expect(run).rejects.toThrow('deadline of the test rollout');
    expect(Date.now() - t0).toBeLessThan(30_000); // not the 90 s health wait
    const stoppedAt = lines.length;
    await new Promise((r) => setTimeout(r, 3000));
    expect(lines.length).toBe(stoppedAt); // nothing more happened after the abort
    site({ ip: 51 });
    const d = await cli(['site', 'deploy', siteFile, '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).health.healthy).toBe(true);
    expect((await inspect()).Config.Env).toEqual(before.Config.Env);
    expect((await host.exec('docker ps -a --format "{{.Names}}"')).stdout.trim().split('\n')).toEqual(['gfdt-vobox']);
  });

  it('the optional host-side macvlan shim lets the host reach its VO-box', async () => {
    const shim = { name: 'gfdtshim', ip: `${lan.base}.40` };
    const withShim = () => {
      const doc = siteDoc(lan, host, image, join(work, 'vol'), { ip: 51 }) as any;
      doc.vobox.network.shim = shim;
      return writeSite(siteFile, doc);
    };
    expect((await host.exec(`ping -c 1 -W 1 ${lan.base}.51`)).code).not.toBe(0); // macvlan: parent cannot reach its child
    withShim();
    const before = await inspect();
    const d = await cli(['site', 'deploy', siteFile, '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).changes.map((c: any) => c.kind)).toEqual(['shim']);
    expect((await inspect()).Id).toBe(before.Id);
    expect((await host.exec(`ping -c 1 -W 2 ${lan.base}.51`)).code).toBe(0);
  });

  it('destroy removes what deploy created and keeps volume data', async () => {
    {
      const doc = siteDoc(lan, host, image, join(work, 'vol'), { ip: 51 }) as any;
      doc.vobox.network.shim = { name: 'gfdtshim', ip: `${lan.base}.40` };
      writeSite(siteFile, doc);
    }
    writeFileSync(join(work, 'vol', 'gfdt-vobox', 'home', 'keep-me'), 'x');
    const r = await cli(['site', 'destroy', siteFile, '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((await host.exec('docker ps -aq')).stdout.trim()).toBe('');
    expect((await host.exec('docker network ls --format "{{.Name}}"')).stdout).not.toMatch(/gfdtnet/);
    expect((await host.exec('ls /etc/security/limits.d')).stdout.trim()).toBe('');
    expect((await host.exec('ip link show gfdtshim')).code).not.toBe(0);
    expect((await cli(['site', 'status', siteFile, '--json'])).stdout).toMatch(/"exists": false/);
    expect(await lanSees(`${lan.base}.51`)).toBeNull();
    expect((await host.exec(`cat ${join(work, 'vol', 'gfdt-vobox', 'home', 'keep-me')}`)).stdout).toBe('x');
  });

  it('an address held by another container on the host is refused before anything changes', async () => {
    site({ ip: 51 });
    if ((await host.exec(`docker image inspect ${image}`)).code !== 0) {
      await execa('sh', ['-c', `docker save ${image} | ssh -i ${host.identityFile} -o UserKnownHostsFile=${host.knownHosts} -o BatchMode=yes root@${host.address} docker load -q`]);
    }
    await host.exec(`docker network create -d macvlan --subnet ${lan.subnet} --gateway ${lan.gateway} -o parent=eth0 gfdtnet`);
    const run = await host.exec(`docker run -d --name squatter --network gfdtnet --ip ${lan.base}.51 --entrypoint sleep ${image} 600`);
    expect(run.code, run.stderr).toBe(0);
    const before = await snapshot(host);
    const r = await cli(['site', 'deploy', siteFile, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/vobox\.network\.ip: ip 10\.\d+\.\d+\.51 is already used .* by container squatter/);
    expect(await snapshot(host)).toBe(before);
  });
});
