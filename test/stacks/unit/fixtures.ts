/**
 * Plain-data fixtures for the stacks unit layer: a valid site document, and an observed host
 * (HostState + Docker inspect shapes) in which everything already matches the settings, which
 * each test then bends. No SSH, no engine.
 */
import { parseSiteSpec, type SiteSpec } from '../../../stacks/spec.ts';
import { deriveSettings, type DeploySettings } from '../../../stacks/settings.ts';
import type { HostState } from '../../../stacks/session.ts';
import type { Desired, Observed } from '../../../stacks/resources/types.ts';

export function siteDoc(): any {
  return {
    site: 'UNIT-SITE',
    host: { address: '10.9.9.9', user: 'root', hostKey: 'SHA256:' + 'B'.repeat(43) },
    vobox: {
      name: 'unit-vobox',
      image: 'registry.example.org/alice/vobox:1.0',
      hostname: 'voboxunit.example.org',
      network: { name: 'sitenet', parent: 'eth0', subnet: '10.1.2.0/24', gateway: '10.1.2.1', ip: '10.1.2.20', mac: '02:42:0A:01:02:14', dns: ['10.1.2.1'] },
      services: ['ce', 'cron'],
      limits: { nofile: 1048576 },
      cvmfs: { repositories: ['alice.cern.ch'], mount: '/cvmfs' },
      volumes: { home: '/srv/vobox/home', gridSecurity: '/srv/vobox/gs' },
    },
  };
}

export function spec(mutate: (doc: any) => void = () => {}): SiteSpec {
  const doc = siteDoc();
  mutate(doc);
  return parseSiteSpec(doc, 'unit.yaml');
}

export function desired(st: DeploySettings, recreateNetwork = false): Desired {
  return { settings: st, file: 'unit.yaml', recreateNetwork };
}

/** A host on which every resource already matches `st`. */
export function converged(st: DeploySettings): Observed {
  const host: HostState = {
    kernel: '6.1.0',
    dockerdPid: 100,
    dockerdNofile: 1048576,
    containerdNofile: 1048576,
    nrOpen: 1048576,
    fileMax: 9223372036854775807,
    systemd: true,
    cvmfsClient: true,
    maxUserNamespaces: 15000,
    unprivilegedUsernsClone: null,
    parentState: 'up',
    diskFreeKb: 50 * 1024 * 1024,
    daemonJsonText: JSON.stringify({ debug: false, ...st.host.daemonJson }),
    limitsText: st.host.limitsFile.content,
    cvmfsLocalText: st.host.cvmfsDefaultLocal.content,
    dropIns: Object.fromEntries(st.host.systemdDropIns.map((d) => [d.path, d.content])),
    missingDirs: [],
    shimPresent: st.shim ? true : null,
  };
  const imageId = 'sha256:' + 'ab'.repeat(32);
  const c = st.container;
  return {
    hostLabel: 'root@10.9.9.9:22',
    apiVersion: '1.45',
    host,
    network: {
      Name: st.network.name,
      Driver: 'macvlan',
      Options: { parent: st.network.parent },
      IPAM: { Config: [{ Subnet: st.network.subnet, Gateway: st.network.gateway }] },
      Containers: { ['c'.repeat(64)]: { Name: c.name, IPv4Address: `${c.ip}/24`, MacAddress: c.mac } },
    },
    container: {
      Image: imageId,
      State: { Running: true, Status: 'running' },
      Config: { Image: c.image, Hostname: c.hostname, Env: Object.entries(c.env).map(([k, v]) => `${k}=${v}`), Labels: c.labels },
      HostConfig: { Binds: c.binds, Dns: c.dns, Ulimits: [{ Name: 'nofile', Soft: st.nofile.applied, Hard: st.nofile.applied }] },
      NetworkSettings: { Networks: { [st.network.name]: { IPAMConfig: { IPv4Address: c.ip }, MacAddress: c.mac } } },
    },
    image: { source: { kind: 'registry', ref: c.image }, hostId: imageId },
  };
}

export const settingsOf = (s: SiteSpec) => deriveSettings(s);
