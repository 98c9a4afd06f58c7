/**
 * The site spec as Pulumi resources: @pulumi/command remote commands for host setup, @pulumi/docker
 * Network (macvlan) + RemoteImage + Container. Everything comes from deriveSettings(spec, facts), the
 * same function the SSH engine uses, so the two engines cannot drift.
 */
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as command from '@pulumi/command';
import { readFileSync } from 'node:fs';
import { UsageError } from '../../base/errors.ts';
import { deriveSettings, type DeploySettings, type HostFacts } from '../settings.ts';
import type { SiteSpec } from '../spec.ts';

function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The host setup the SSH engine does, as one idempotent shell script for a remote Command:
 * daemon.json merged (python3; unrelated keys kept) + SIGHUP, limits.d, sysctl when below need,
 * systemd drop-ins when systemd runs, cvmfs default.local when a cvmfs client is installed,
 * volume directories.
 */
export function hostSetupScript(st: DeploySettings): string {
  const h = st.host;
  const merge = `import json,os
p='/etc/docker/daemon.json'
cur=json.load(open(p)) if os.path.exists(p) and os.path.getsize(p)>0 else {}
want=json.loads(${JSON.stringify(JSON.stringify(h.daemonJson))})
new=dict(cur); new.update(want)
if new!=cur:
    os.makedirs('/etc/docker',exist_ok=True); open(p+'.tmp','w').write(json.dumps(new,indent=2)+'\\n'); os.replace(p+'.tmp',p); print('changed')`;
  const lines = [
    'set -eu',
    `mkdir -p ${h.directories.map((d) => sq(d.path)).join(' ')}`,
    `if [ "$(python3 -c ${sq(merge)})" = changed ]; then kill -HUP "$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd)"; fi`,
    `mkdir -p /etc/security/limits.d && printf %s ${sq(h.limitsFile.content)} > ${sq(h.limitsFile.path)}`,
    ...Object.entries(h.sysctlMin).map(([k, v]) => `[ "$(sysctl -n ${k})" -ge ${v} ] || sysctl -w ${k}=${v}`),
    `if [ -d /run/systemd/system ]; then changed=0; ${h.systemdDropIns
      .map((d) => `mkdir -p ${sq(d.path.replace(/\/[^/]+$/, ''))}; if ! printf %s ${sq(d.content)} | cmp -s - ${sq(d.path)}; then printf %s ${sq(d.content)} > ${sq(d.path)}; changed=1; fi;`)
      .join(' ')} if [ $changed = 1 ]; then systemctl daemon-reload && systemctl restart containerd docker; fi; fi`,
    `if command -v cvmfs_config >/dev/null 2>&1; then printf %s ${sq(h.cvmfsDefaultLocal.content)} > ${sq(h.cvmfsDefaultLocal.path)}; cvmfs_config reload >/dev/null 2>&1 || true; fi`,
    ...st.cvmfs.repositories.map((r) => `ls ${sq(`${st.cvmfs.mount}/${r}`)}/ >/dev/null 2>&1 || echo "warning: ${r} not mounted under ${st.cvmfs.mount}" >&2`),
  ];
  return `${lines.join('\n')}\n`;
}

/** "host:container[:opts]" -> a Pulumi bind mount. */
export function bindToMount(bind: string): docker.types.input.ContainerMount {
  const [source, target, opts] = bind.split(':');
  const m: docker.types.input.ContainerMount = { type: 'bind', source, target };
  if (opts === 'shared' || opts === 'rshared' || opts === 'slave' || opts === 'rslave') m.bindOptions = { propagation: opts };
  if (opts === 'ro') m.readOnly = true;
  return m;
}

export interface SiteResources {
  settings: DeploySettings;
  hostSetup: command.remote.Command;
  network: docker.Network;
  image: docker.RemoteImage;
  container: docker.Container;
}

export function defineSite(spec: SiteSpec, facts: HostFacts = {}, opts: { privateKey?: string } = {}): SiteResources {
  const st = deriveSettings(spec, facts);
  if (spec.vobox.image.startsWith('/')) {
    throw new UsageError('the Pulumi program takes an image reference, not a local archive', {
      where: `${spec.file ?? 'site file'}: vobox.image`,
      hint: 'Push the image to a registry the host can pull from, or deploy archives with `gridforge site deploy`.',
    });
  }
  const h = spec.host;
  const sshOpts = ['-p', String(h.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes'];
  if (h.knownHosts) sshOpts.push('-o', `UserKnownHostsFile=${h.knownHosts}`);
  if (h.identityFile) sshOpts.push('-i', h.identityFile);
  const provider = new docker.Provider(`${st.container.name}-docker`, { host: `ssh://${h.user}@${h.address}`, sshOpts });
  const privateKey = opts.privateKey ?? (h.identityFile ? readFileSync(h.identityFile, 'utf8') : undefined);
  const connection = { host: h.address, port: h.port, user: h.user, privateKey: privateKey ? pulumi.secret(privateKey) : undefined };
  const hostSetup = new command.remote.Command(`${st.container.name}-host-setup`, {
    connection,
    create: hostSetupScript(st),
    triggers: [st.settingsHash, JSON.stringify(st.host)],
  });
  const network = new docker.Network(
    st.network.name,
    {
      name: st.network.name,
      driver: st.network.driver,
      options: st.network.options,
      ipamConfigs: [{ subnet: st.network.subnet, gateway: st.network.gateway }],
    },
    { provider, dependsOn: [hostSetup] },
  );
  const image = new docker.RemoteImage(`${st.container.name}-image`, { name: st.container.image, keepLocally: true }, { provider });
  const c = st.container;
  const container = new docker.Container(
    c.name,
    {
      name: c.name,
      image: image.imageId,
      hostname: c.hostname,
      dns: c.dns,
      envs: Object.entries(c.env).map(([k, v]) => `${k}=${v}`),
      labels: Object.entries(c.labels).map(([label, value]) => ({ label, value })),
      mounts: c.binds.map(bindToMount),
      networkMode: st.network.name,
      networksAdvanced: [{ name: network.name, ipv4Address: c.ip, macAddress: c.mac }],
      restart: c.restart,
      ulimits: c.ulimits.map((u) => ({ name: u.name, soft: u.soft, hard: u.hard })),
      privileged: c.privileged,
      capabilities: c.capAdd.length ? { adds: c.capAdd } : undefined,
      logDriver: c.logConfig.type,
      logOpts: c.logConfig.config,
      mustRun: true,
    },
    { provider, dependsOn: [hostSetup, network], deleteBeforeReplace: true },
  );
  return { settings: st, hostSetup, network, image, container };
}
