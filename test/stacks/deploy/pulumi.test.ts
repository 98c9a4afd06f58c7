/**
 * The Pulumi program under pulumi.runtime.setMocks: the resource inputs must equal what the SSH
 * engine applies (its Docker API bodies, from the same deriveSettings). The host-setup script of the
 * remote Command is also run for real on a test host and compared with the SSH engine's files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { parseSiteSpec, type SiteSpec } from '../../../stacks/spec.ts';
import { deriveSettings } from '../../../stacks/settings.ts';
import { containerCreateBody } from '../../../stacks/resources/container.ts';
import { networkCreateBody } from '../../../stacks/resources/network.ts';
import { cleanupStale, createLan, createTestHost, type Lan, type TestHost } from '../../support/testhost/index.ts';

interface Captured {
  type: string;
  name: string;
  inputs: any;
}
const captured: Captured[] = [];

pulumi.runtime.setMocks(
  {
    newResource(args) {
      captured.push({ type: args.type, name: args.name, inputs: args.inputs });
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type === 'docker:index/remoteImage:RemoteImage') state.imageId = 'sha256:' + 'ab'.repeat(32);
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      return args.inputs;
    },
  },
  'gridforge-site',
  'test',
  false,
);

const doc = {
  site: 'TEST-PULUMI',
  host: { address: '10.9.9.9', user: 'root', hostKey: 'SHA256:' + 'B'.repeat(43) },
  vobox: {
    name: 'pl-vobox',
    image: 'registry.example.org/alice/vobox-slurm:1.0',
    hostname: 'voboxpl.example.org',
    network: { name: 'sitenet', parent: 'eth0', subnet: '10.1.2.0/24', gateway: '10.1.2.1', ip: '10.1.2.20', mac: '02:42:0A:01:02:14', dns: ['10.1.2.1', '10.1.2.2'] },
    services: ['ce', 'cron', 'rsyslog', 'sshd'],
    limits: { nofile: 1048576 },
    capabilities: ['NET_ADMIN', 'SYS_PTRACE'],
    cvmfs: { repositories: ['alice.cern.ch'], mount: '/cvmfs' },
    jalien: { version: '2.1.3-1' },
    volumes: { home: '/srv/vobox/pl/home', gridSecurity: '/srv/vobox/pl/grid-security' },
  },
};

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 200));
}

describe('Pulumi program (mocks)', () => {
  let spec: SiteSpec;
  beforeAll(async () => {
    spec = parseSiteSpec(doc, 'pulumi-test.yaml');
    const { defineSite } = await import('../../../stacks/pulumi/program.ts');
    defineSite(spec, { nofileMax: 20000 }, { privateKey: 'not-a-real-key' });
    await settle();
  });

  const res = (type: string) => {
    const r = captured.find((c) => c.type === type);
    if (!r) throw new Error(`no ${type} registered; got ${captured.map((c) => c.type).join(', ')}`);
    return r.inputs;
  };

  it('registers network, image, container and the host-setup command', () => {
    expect(captured.map((c) => c.type).sort()).toEqual(
      ['command:remote:Command', 'docker:index/container:Container', 'docker:index/network:Network', 'docker:index/remoteImage:RemoteImage', 'pulumi:providers:docker'].sort(),
    );
  });

  it('network inputs equal the SSH engine network create body', () => {
    const n = res('docker:index/network:Network');
    const body = networkCreateBody(deriveSettings(spec, { nofileMax: 20000 }));
    expect(n.name).toBe(body.Name);
    expect(n.driver).toBe(body.Driver);
    expect(n.options).toEqual(body.Options);
    expect(n.ipamConfigs).toEqual(body.IPAM.Config.map((c) => ({ subnet: c.Subnet, gateway: c.Gateway })));
  });

  it('container inputs equal the SSH engine container create body', () => {
    const st = deriveSettings(spec, { nofileMax: 20000 });
    // The SSH engine's body for a daemon with per-endpoint MAC (what the Pulumi provider uses).
    const body = containerCreateBody(st, st.container.image, '1.44') as any;
    const c = res('docker:index/container:Container');
    const img = res('docker:index/remoteImage:RemoteImage');
    expect(img.name).toBe(body.Image);
    expect(c.name).toBe('pl-vobox');
    expect(c.hostname).toBe(body.Hostname);
    expect(c.envs).toEqual(body.Env);
    expect(c.envs).toEqual(['GRIDFORGE_SERVICES=ce,cron,rsyslog,sshd', 'JALIEN_VERSION=2.1.3-1']);
    expect(Object.fromEntries(c.labels.map((l: any) => [l.label, l.value]))).toEqual(body.Labels);
    expect(c.mounts.map((m: any) => [m.source, m.target, m.bindOptions?.propagation].filter(Boolean).join(':'))).toEqual(body.HostConfig.Binds);
    expect(c.mounts[0]).toMatchObject({ type: 'bind', source: '/cvmfs', target: '/cvmfs', bindOptions: { propagation: 'shared' } });
    expect(c.ulimits).toEqual(body.HostConfig.Ulimits.map((u: any) => ({ name: u.Name, soft: u.Soft, hard: u.Hard })));
    expect(c.ulimits).toEqual([{ name: 'nofile', soft: 20000, hard: 20000 }]); // clamped by the same facts
    expect(c.restart).toBe(body.HostConfig.RestartPolicy.Name);
    expect(c.privileged).toBe(body.HostConfig.Privileged);
    expect(c.capabilities.adds).toEqual(body.HostConfig.CapAdd);
    expect(c.dns).toEqual(body.HostConfig.Dns);
    expect(c.logDriver).toBe(body.HostConfig.LogConfig.Type);
    expect(c.logOpts).toEqual(body.HostConfig.LogConfig.Config);
    const ep = body.NetworkingConfig.EndpointsConfig.sitenet;
    expect(c.networksAdvanced).toEqual([{ name: 'sitenet', ipv4Address: ep.IPAMConfig.IPv4Address, macAddress: ep.MacAddress }]);
    expect(ep.MacAddress).toBe('02:42:0a:01:02:14');
  });

  it('an old daemon gets the MAC at container level from the SSH engine (API < 1.44)', () => {
    const st = deriveSettings(spec, { nofileMax: 20000 });
    const old = containerCreateBody(st, 'x', '1.41') as any;
    expect(old.MacAddress).toBe('02:42:0a:01:02:14');
    expect(old.NetworkingConfig.EndpointsConfig.sitenet.MacAddress).toBeUndefined();
  });

  it('the host-setup command carries the SSH engine host settings', () => {
    const st = deriveSettings(spec, { nofileMax: 20000 });
    const cmd = res('command:remote:Command');
    // the connection holds the private key, so Pulumi keeps it as a secret (signature key + value)
    expect(cmd.connection['4dabf18193072939515e22adb298388d']).toBeDefined();
    expect(cmd.connection.value).toMatchObject({ host: '10.9.9.9', port: 22, user: 'root', privateKey: 'not-a-real-key' });
    expect(cmd.triggers).toContain(st.settingsHash);
    expect(cmd.create).toContain(JSON.stringify(JSON.stringify(st.host.daemonJson)));
    expect(cmd.create).toContain(st.host.limitsFile.path);
  });
});

describe('Pulumi program generated from the deploy resources', () => {
  it('the host-setup command persists the nofile sysctl file and creates the host shim, as the SSH engine does', async () => {
    const shimSpec = parseSiteSpec({ ...doc, vobox: { ...doc.vobox, network: { ...doc.vobox.network, shim: { name: 'gfplshim', ip: '10.1.2.40' } } } }, 'pulumi-shim.yaml');
    const st = deriveSettings(shimSpec, { nofileMax: 20000 });
    const before = captured.length;
    const { defineSite } = await import('../../../stacks/pulumi/program.ts');
    defineSite(shimSpec, { nofileMax: 20000 }, { privateKey: 'not-a-real-key' });
    await settle();
    const cmd = captured.slice(before).find((c) => c.type === 'command:remote:Command')?.inputs;
    expect(st.host.sysctlFile.path).toBe('/etc/sysctl.d/90-gridforge-nofile.conf');
    expect(cmd.create).toContain(`> '${st.host.sysctlFile.path}'`);
    for (const k of Object.keys(st.host.sysctlMin)) expect(cmd.create).toContain(`sysctl -w '${k}=${st.host.sysctlMin[k]}'`);
    expect(st.shim).toMatchObject({ name: 'gfplshim', ip: '10.1.2.40', parent: 'eth0', route: '10.1.2.20/32' });
    expect(cmd.create).toContain(`ip link add 'gfplshim' link 'eth0' type macvlan mode bridge`);
    expect(cmd.create).toContain(`ip addr add '10.1.2.40/32' dev 'gfplshim'`);
    expect(cmd.create).toContain(`ip route replace '10.1.2.20/32' dev 'gfplshim'`);
  });
});

describe('Pulumi program entry (stack config)', () => {
  it('loads the site file named by gridforge:siteFile and exports the VO-box address', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gfdp-'));
    try {
      writeFileSync(join(dir, 'id'), 'dummy key for mocks\n');
      const site = { ...doc, host: { ...doc.host, identityFile: './id' } };
      writeFileSync(join(dir, 'pl.yaml'), dump(site));
      pulumi.runtime.setAllConfig({ 'gridforge:siteFile': join(dir, 'pl.yaml'), 'gridforge:nofileMax': '20000' });
      const before = captured.length;
      const mod = await import('../../../stacks/pulumi/index.ts');
      await settle();
      expect(mod.ip).toBe('10.1.2.20');
      expect(mod.mac).toBe('02:42:0a:01:02:14');
      expect(mod.settingsHash).toBe(deriveSettings(parseSiteSpec(site, 'pl.yaml'), { nofileMax: 20000 }).settingsHash);
      const c = captured.slice(before).find((x) => x.type === 'docker:index/container:Container');
      expect(c?.inputs.ulimits).toEqual([{ name: 'nofile', soft: 20000, hard: 20000 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Pulumi host-setup script on a real test host', () => {
  let lan: Lan;
  let host: TestHost;
  beforeAll(async () => {
    await cleanupStale('gfdp');
    lan = await createLan('gfdp');
    host = await createTestHost(lan, { name: 'h1' });
  });
  afterAll(async () => {
    await lan?.destroy().catch(() => {});
    await cleanupStale('gfdp').catch(() => {});
  });

  it('writes the same files as the SSH engine, keeps unrelated daemon.json keys, reloads live-restore', async () => {
    const spec = parseSiteSpec({ ...doc, vobox: { ...doc.vobox, volumes: { home: `${host.root}/vol/home`, gridSecurity: `${host.root}/vol/gs` } } }, 'x.yaml');
    const st = deriveSettings(spec, { nofileMax: 20000 });
    await host.exec(`echo '{"debug": false, "storage-driver": "overlay2"}' > /etc/docker/daemon.json`);
    const { hostSetupScript } = await import('../../../stacks/pulumi/program.ts');
    const r = await host.exec(hostSetupScript(st));
    expect(r.code, r.stderr).toBe(0);
    const dj = JSON.parse((await host.exec('cat /etc/docker/daemon.json')).stdout);
    expect(dj).toEqual({ debug: false, 'storage-driver': 'overlay2', ...st.host.daemonJson });
    expect((await host.exec(`cat ${st.host.limitsFile.path}`)).stdout + '\n').toBe(st.host.limitsFile.content);
    expect((await host.exec(`test -d ${host.root}/vol/home && test -d ${host.root}/vol/gs && echo ok`)).stdout).toBe('ok');
    let live = false;
    for (let i = 0; i < 30 && !live; i++) {
      live = JSON.parse((await host.exec('curl -s --unix-socket /run/docker.sock http://d/info')).stdout).LiveRestoreEnabled;
      if (!live) await new Promise((res) => setTimeout(res, 100));
    }
    expect(live).toBe(true);
    // idempotent: a second run changes nothing and does not signal dockerd again
    const pid = host.dockerdPid();
    const r2 = await host.exec(hostSetupScript(st));
    expect(r2.code).toBe(0);
    expect(host.dockerdPid()).toBe(pid);
  });
});
