/**
 * The site spec as Pulumi resources, generated from the same deploy resources as the SSH engine
 * (stacks/resources/): the host-setup remote Command runs their hostScript lines (daemon.json merge,
 * limits.d, sysctl with its persisted file, systemd drop-ins, cvmfs default.local, directories, the
 * macvlan shim), and the @pulumi/docker Network / Container take their args (networkArgs,
 * containerArgs). Everything comes from deriveSettings(spec, facts), so the two engines cannot drift.
 */
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as command from '@pulumi/command';
import { readFileSync } from 'node:fs';
import { UsageError } from '../../base/errors.ts';
import { deriveSettings, type DeploySettings, type HostFacts } from '../settings.ts';
import type { SiteSpec } from '../spec.ts';
import { RESOURCES } from '../resources/index.ts';
import { containerArgs } from '../resources/container.ts';
import { networkArgs } from '../resources/network.ts';
export { bindToMount } from '../resources/container.ts';

/** The host setup the SSH engine does, as one idempotent shell script: every resource's hostScript, in apply order. */
export function hostSetupScript(st: DeploySettings): string {
  return `${['set -eu', ...RESOURCES.flatMap((r) => r.hostScript?.(st) ?? [])].join('\n')}\n`;
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
    triggers: [st.settingsHash, JSON.stringify(st.host), JSON.stringify(st.shim ?? null)],
  });
  const network = new docker.Network(st.network.name, networkArgs(st), { provider, dependsOn: [hostSetup] });
  const image = new docker.RemoteImage(`${st.container.name}-image`, { name: st.container.image, keepLocally: true }, { provider });
  const c = st.container;
  const container = new docker.Container(
    c.name,
    {
      ...containerArgs(st),
      image: image.imageId,
      networksAdvanced: [{ name: network.name, ipv4Address: c.ip, macAddress: c.mac }],
    },
    { provider, dependsOn: [hostSetup, network], deleteBeforeReplace: true },
  );
  return { settings: st, hostSetup, network, image, container };
}
