/**
 * Read everything the resources' diffs need, in one parallel round: the host facts and managed files
 * (one SSH round trip, stacks/session.ts readHostState), the Docker network, the container and the
 * image on the host. The result is plain data (Observed), so every diff is a pure function of it.
 */
import { resolveDeployImage } from '../deploy-image.ts';
import { readHostState, type Session } from '../session.ts';
import type { DeploySettings } from '../settings.ts';
import type { Observed } from './types.ts';

/** `st` only names what to read (paths, names); facts-dependent values are not used here. */
export async function observe(s: Session, st: DeploySettings, file: string): Promise<Observed> {
  const [host, network, container, source] = await Promise.all([
    readHostState(s, {
      limits: st.host.limitsFile.path,
      cvmfsLocal: st.host.cvmfsDefaultLocal.path,
      dropIns: st.host.systemdDropIns.map((d) => d.path),
      dirs: st.host.directories.map((d) => d.path),
      shim: st.shim?.name,
    }),
    s.docker.inspectNetwork(st.network.name),
    s.docker.inspectContainer(st.container.name),
    resolveDeployImage(st.container.image, `${file}: vobox.image`),
  ]);
  const onHost = await s.docker.inspectImage(source.kind === 'registry' ? source.ref : source.id);
  return { hostLabel: s.ssh.label, apiVersion: s.api.apiVersion, host, network, container, image: { source, hostId: (onHost?.Id as string | undefined) ?? null } };
}
