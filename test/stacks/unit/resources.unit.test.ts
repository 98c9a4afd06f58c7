/**
 * Each deploy resource's diff (stacks/resources/) against an observed host given as plain data:
 * a converged host gives no change; each bent fact gives exactly its resource's change; the
 * Pulumi host script carries what the SSH engine applies (one source for both engines).
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../base/errors.ts';
import { deriveSettings } from '../../../stacks/settings.ts';
import { diffAll } from '../../../stacks/plan.ts';
import { container, cvmfsConfig, daemonJson, directories, image, limits, network, RESOURCES, sysctl, systemdDropIns } from '../../../stacks/resources/index.ts';
import { raisedSysctls, sysctlFileContent } from '../../../stacks/resources/sysctl.ts';
import { containerCreateBody } from '../../../stacks/resources/container.ts';
import { hostSetupScript } from '../../../stacks/pulumi/program.ts';
import { converged, desired, spec } from './fixtures.ts';

const st = deriveSettings(spec());
const kinds = (o = converged(st), d = desired(st)) => diffAll(d, o).changes.map((c) => `${c.action} ${c.kind}`);

describe('resource diffs against plain host state', () => {
  it('a converged host has no changes', () => {
    expect(kinds()).toEqual([]);
  });

  it('every change kind comes from exactly one resource, in plan order', () => {
    expect(RESOURCES.flatMap((r) => r.kinds)).toEqual(['directories', 'daemon-json', 'limits', 'sysctl', 'systemd-dropin', 'cvmfs-config', 'network', 'shim', 'image', 'container']);
  });

  it('directories: missing volume folders are created', () => {
    const o = converged(st);
    o.host.missingDirs = ['/srv/vobox/gs'];
    expect(directories.diff(desired(st), o)).toEqual([{ kind: 'directories', action: 'create', target: '/srv/vobox/gs', detail: 'persistent volumes' }]);
  });

  it('daemon-json: changed keys only, unrelated keys kept, unreadable JSON refused', () => {
    const o = converged(st);
    o.host.daemonJsonText = JSON.stringify({ debug: true, 'live-restore': false });
    const [c] = daemonJson.diff(desired(st), o);
    expect(c.action).toBe('update');
    expect(c.detail).toMatch(/^set live-restore, default-ulimits, log-driver, log-opts \(other keys kept\); reload dockerd \(SIGHUP\) for live-restore/);
    o.host.daemonJsonText = null;
    expect(daemonJson.diff(desired(st), o)[0].action).toBe('create');
    o.host.daemonJsonText = '{ not json';
    expect(() => daemonJson.diff(desired(st), o)).toThrow(/not valid JSON/);
  });

  it('limits and systemd drop-ins: rewritten when the content differs; drop-ins only under systemd', () => {
    const o = converged(st);
    o.host.limitsText = 'old';
    o.host.dropIns[st.host.systemdDropIns[0].path] = null;
    expect(limits.diff(desired(st), o).map((c) => c.action)).toEqual(['update']);
    expect(systemdDropIns.diff(desired(st), o).map((c) => `${c.action} ${c.target}`)).toEqual([`create ${st.host.systemdDropIns[0].path}`]);
    o.host.systemd = false;
    expect(systemdDropIns.diff(desired(st), o)).toEqual([]);
  });

  it('sysctl: only values below need are raised, and only they are persisted', () => {
    const o = converged(st);
    o.host.nrOpen = 1024;
    expect(sysctl.diff(desired(st), o)).toEqual([{ kind: 'sysctl', action: 'update', target: 'fs.nr_open', detail: 'fs.nr_open 1024 -> 1048576' }]);
    const raised = raisedSysctls(st, o.host);
    expect(sysctlFileContent(st, raised)).toBe('# written by gridforge\nfs.nr_open = 1048576\n');
  });

  it('cvmfs-config: written when absent or gridforge-written; a foreign file is left alone with a warning', () => {
    const o = converged(st);
    o.host.cvmfsLocalText = null;
    expect(cvmfsConfig.diff(desired(st), o).map((c) => c.action)).toEqual(['create']);
    o.host.cvmfsLocalText = 'CVMFS_REPOSITORIES=atlas.cern.ch\n';
    expect(cvmfsConfig.diff(desired(st), o)).toEqual([]);
    expect(cvmfsConfig.warnings!(desired(st), o)[0]).toMatch(/not written by gridforge: left alone/);
    o.host.cvmfsClient = false;
    o.host.cvmfsLocalText = null;
    expect(cvmfsConfig.diff(desired(st), o)).toEqual([]);
  });

  it('network: created when absent; a differing one refused unless --recreate-network; the shim when missing', () => {
    const o = converged(st);
    o.network = null;
    expect(network.diff(desired(st), o).map((c) => `${c.action} ${c.kind}`)).toEqual(['create network']);
    const bent = converged(st);
    bent.network.Options.parent = 'eth1';
    expect(() => network.diff(desired(st), bent)).toThrow(UsageError);
    expect(() => network.diff(desired(st), bent)).toThrow(/parent eth1 \(want eth0\)/);
    expect(network.diff(desired(st, true), bent).map((c) => `${c.action} ${c.kind}`)).toEqual(['replace network']);
    const withShim = deriveSettings(spec((d) => (d.vobox.network.shim = { name: 'gf-shim', ip: '10.1.2.40' })));
    const os = converged(withShim);
    os.host.shimPresent = false;
    expect(network.diff(desired(withShim), os)).toEqual([{ kind: 'shim', action: 'create', target: 'gf-shim', detail: 'macvlan on eth0 with 10.1.2.40, route 10.1.2.20/32' }]);
  });

  it('network: another container holding the IP or the MAC is refused with the key at fault', () => {
    const o = converged(st);
    o.network.Containers['d'.repeat(64)] = { Name: 'squatter', IPv4Address: '10.1.2.20/24', MacAddress: '02:00:00:00:00:01' };
    try {
      network.diff(desired(st), o);
      throw new Error('accepted');
    } catch (e) {
      expect((e as UsageError).where).toBe('unit.yaml: vobox.network.ip');
      expect((e as Error).message).toMatch(/by container squatter/);
    }
  });

  it('image: pulled or loaded only when the host lacks it', () => {
    const o = converged(st);
    o.image.hostId = null;
    expect(image.diff(desired(st), o).map((c) => c.action)).toEqual(['pull']);
    o.image.source = { kind: 'archive', path: '/tmp/v.tar', id: 'sha256:' + 'cd'.repeat(32), repoTags: [] };
    expect(image.diff(desired(st), o)).toMatchObject([{ action: 'load', target: '/tmp/v.tar' }]);
  });

  it('container: created, replaced on settings or image drift (with the reason), started when stopped', () => {
    const o = converged(st);
    o.container.State = { Running: false, Status: 'exited' };
    expect(container.diff(desired(st), o)).toMatchObject([{ action: 'start', detail: 'state exited' }]);
    const moved = deriveSettings(spec((d) => (d.vobox.network.ip = '10.1.2.21')));
    const [r] = container.diff(desired(moved), converged(st));
    expect(r.action).toBe('replace');
    expect(r.detail).toMatch(/^ip 10\.1\.2\.20 -> 10\.1\.2\.21/);
    const newImage = converged(st);
    newImage.image.hostId = 'sha256:' + 'ef'.repeat(32);
    expect(container.diff(desired(st), newImage)[0].detail).toMatch(/^image sha256:abababababab -> sha256:efefefefefef/);
    const none = converged(st);
    none.container = null;
    expect(container.diff(desired(st), none).map((c) => c.action)).toEqual(['create']);
  });

  it('container body: per-endpoint MAC from API 1.44, container-level before', () => {
    const body = containerCreateBody(st, 'img', '1.44') as any;
    expect(body.NetworkingConfig.EndpointsConfig.sitenet.MacAddress).toBe('02:42:0a:01:02:14');
    expect((containerCreateBody(st, 'img', '1.41') as any).MacAddress).toBe('02:42:0a:01:02:14');
  });
});

describe('the Pulumi host script comes from the same resources', () => {
  it('holds the persisted sysctl file, the shim, the host files and the directories', () => {
    const s2 = deriveSettings(spec((d) => (d.vobox.network.shim = { name: 'gf-shim', ip: '10.1.2.40' })), { nofileMax: 20000 });
    const script = hostSetupScript(s2);
    expect(script).toContain(`> '${s2.host.sysctlFile.path}'`);
    expect(script).toContain(`ip link add 'gf-shim' link 'eth0' type macvlan mode bridge`);
    expect(script).toContain(`ip route replace '10.1.2.20/32' dev 'gf-shim'`);
    expect(script).toContain(`'${s2.host.limitsFile.path}'`);
    for (const f of s2.host.systemdDropIns) expect(script).toContain(`'${f.path}'`);
    expect(script).toContain(`mkdir -p -- '/srv/vobox/home' '/srv/vobox/gs'`);
  });
});
