/**
 * Docker API request bodies derived from the settings: network create and container create, in the
 * shape the daemon's API version accepts (MAC per endpoint from API 1.44, container-level before).
 */
import { apiAtLeast } from './docker-api.ts';
import type { DeploySettings } from './settings.ts';

export function networkCreateBody(st: DeploySettings) {
  return {
    Name: st.network.name,
    Driver: st.network.driver,
    CheckDuplicate: true,
    Options: st.network.options,
    IPAM: { Driver: 'default', Config: [{ Subnet: st.network.subnet, Gateway: st.network.gateway }] },
    Labels: { 'io.gridforge.managed-by': 'gridforge' },
  };
}

export function containerCreateBody(st: DeploySettings, image: string, apiVersion: string) {
  const c = st.container;
  const perEndpointMac = apiAtLeast(apiVersion, '1.44');
  const endpoint: Record<string, unknown> = { IPAMConfig: { IPv4Address: c.ip } };
  if (perEndpointMac) endpoint.MacAddress = c.mac;
  const body: Record<string, unknown> = {
    Image: image,
    Hostname: c.hostname,
    Env: Object.entries(c.env).map(([k, v]) => `${k}=${v}`),
    Labels: c.labels,
    HostConfig: {
      Binds: c.binds,
      RestartPolicy: { Name: c.restart, MaximumRetryCount: 0 },
      Ulimits: c.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
      Privileged: c.privileged,
      CapAdd: c.capAdd.length ? c.capAdd : null,
      Dns: c.dns,
      LogConfig: { Type: c.logConfig.type, Config: c.logConfig.config },
      NetworkMode: st.network.name,
    },
    NetworkingConfig: { EndpointsConfig: { [st.network.name]: endpoint } },
  };
  if (!perEndpointMac) body.MacAddress = c.mac;
  return body;
}
