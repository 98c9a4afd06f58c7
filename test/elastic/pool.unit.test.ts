/**
 * The elastic pool of a site file (elastic/pool.ts) and its slurm.conf fragment
 * (elastic/slurm-conf.ts), without engines: a pool that cannot work is refused naming the key and
 * the fix (no image, more nodes than addresses, addresses off the LAN or on the VO-box), host lists
 * expand as Slurm writes them, the fragment has the cloud nodes, programs, timeouts and rates, and
 * reap's zombie rule.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../base/errors.ts';
import { checkPool, expandHostlist, loadPool, renderSlurmElastic, zombieReason } from '../../elastic/index.ts';
import { parseSiteSpec } from '../../stacks/spec.ts';

const KEY = 'SHA256:' + 'A'.repeat(43);
function spec(elastic: Record<string, unknown> | undefined) {
  const s = parseSiteSpec({
    site: 'TEST-EL',
    host: { address: '10.1.2.5', hostKey: KEY },
    vobox: {
      name: 'vb', image: 'gridforge/vobox-slurm:x', hostname: 'vobox.example.org',
      network: { name: 'gfnet', parent: 'eth0', subnet: '10.1.2.0/24', gateway: '10.1.2.1', ip: '10.1.2.50', mac: '02:42:0a:01:02:32' },
      volumes: { home: '/srv/home', gridSecurity: '/srv/gs' },
      services: ['batch'],
      cvmfs: {},
    },
    ...(elastic ? { elastic } : {}),
  } as never, 'sites/test.yaml');
  return { ...s, file: '/x/sites/test.yaml' };
}
const good = { image: 'gridforge/worker-node:debian-slurm-0.1.0', maxNodes: 3, network: { addresses: '10.1.2.60-10.1.2.62' }, controller: '10.1.2.10:6817', mungeKey: '/etc/munge/munge.key' };

function refused(e: Record<string, unknown>): UsageError {
  try {
    loadPool(spec(e));
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('not refused');
}

describe('elastic pool', () => {
  it('a good pool: nodes el1..el3 on the range, the site host as provider host, the VO-box network', () => {
    const p = loadPool(spec(good));
    expect(p.nodes).toEqual(['el1', 'el2', 'el3']);
    expect(p.addresses).toEqual(['10.1.2.60', '10.1.2.61', '10.1.2.62']);
    expect(p.networkName).toBe('gfnet');
    expect(p.hostsResolved.map((h) => h.address)).toEqual(['10.1.2.5']);
  });

  it('refuses a pool that cannot work, naming the key and the fix', () => {
    const { image: _i, ...noImage } = good;
    let e = refused(noImage);
    expect(e.where).toMatch(/elastic\.image/);
    expect(e.hint).toMatch(/worker-node image/);
    e = refused({ ...good, maxNodes: 5 });
    expect(e.message).toMatch(/maxNodes 5 is more than the 3 addresses/);
    expect(e.where).toMatch(/elastic\.maxNodes/);
    expect(e.hint).toMatch(/lower elastic\.maxNodes to 3 or widen/);
    e = refused({ ...good, network: { addresses: '10.9.9.1-10.9.9.3' } });
    expect(e.message).toMatch(/outside the site LAN 10\.1\.2\.0\/24/);
    e = refused({ ...good, network: { addresses: '10.1.2.49-10.1.2.52' } });
    expect(e.message).toMatch(/includes 10\.1\.2\.50 \(the VO-box\)/);
    e = refused({ ...good, provider: 'openstack' });
    expect(e.where).toMatch(/elastic\.provider/);
    expect(() => loadPool(spec(undefined))).toThrow(/no elastic: block/);
  });

  it('expands Slurm host lists', () => {
    expect(expandHostlist('el[1-3,5]')).toEqual(['el1', 'el2', 'el3', 'el5']);
    expect(expandHostlist('el2,el[07-08]')).toEqual(['el2', 'el07', 'el08']);
    expect(() => expandHostlist('el1;rm')).toThrow(UsageError);
  });

  it('renders the slurm.conf fragment: cloud nodes, programs, timeouts, rates', () => {
    const t = renderSlurmElastic(loadPool(spec({ ...good, cpus: 2, memoryMb: 2000, slurm: { suspendTime: 20, resumeTimeout: 60, resumeRate: 5 } })), { partition: 'alice' });
    for (const l of ['NodeName=el1 NodeAddr=10.1.2.60 NodeHostname=el1 State=CLOUD CPUs=2 RealMemory=2000 Feature=elastic', 'NodeName=el3 NodeAddr=10.1.2.62 NodeHostname=el3 State=CLOUD', 'SuspendTime=20', 'ResumeTimeout=60', 'ResumeRate=5', 'SuspendRate=10', 'PartitionName=alice Nodes=el[1-3]'])
      expect(t).toContain(l);
    expect(t).toMatch(/^ResumeProgram=\/var\/lib\/gridforge\/elastic\/TEST-EL\/bin\/gridforge-elastic-resume$/m);
    expect(t).toMatch(/^SlurmctldParameters=enable_configless,idle_on_node_suspend$/m);
    expect(t).not.toMatch(/cloud_reg_addrs/); // it resets NodeAddr to the name on power down: slurmctld stalls in DNS
  });

  it("reap's rule: unknown, powered down, DOWN and never-registered nodes are zombies; a young node powering up is not", () => {
    const p = loadPool(spec({ ...good, slurm: { resumeTimeout: 60 } }));
    const now = Date.parse('2026-01-01T00:10:00Z');
    const r = (node: string, ageS: number) => ({ node, createdAt: new Date(now - ageS * 1000).toISOString() });
    expect(zombieReason(p, r('el9', 5), undefined, now)).toMatch(/not in the pool/);
    expect(zombieReason(p, r('el1', 5), undefined, now)).toMatch(/does not know/);
    expect(zombieReason(p, r('el1', 5), 'IDLE+CLOUD+POWERED_DOWN', now)).toMatch(/powered down/);
    expect(zombieReason(p, r('el1', 5), 'DOWN+CLOUD+NOT_RESPONDING', now)).toBeNull();
    expect(zombieReason(p, r('el1', 90), 'ALLOCATED+CLOUD+NOT_RESPONDING+POWERING_UP', now)).toMatch(/ResumeTimeout 60/);
    expect(zombieReason(p, r('el1', 5), 'ALLOCATED+CLOUD+POWERING_UP', now)).toBeNull();
    expect(zombieReason(p, r('el1', 5), 'DOWN+CLOUD', now)).toMatch(/DOWN/);
    expect(zombieReason(p, r('el1', 500), 'IDLE+CLOUD', now)).toBeNull();
  });

  it('site check rows: a bad pool fails with its fix; an unreachable provider host fails with its fix', async () => {
    const bad = await checkPool(spec({ ...good, maxNodes: 5 }));
    expect(bad).toEqual([expect.objectContaining({ check: 'elastic pool', status: 'fail', fix: expect.stringMatching(/lower elastic\.maxNodes/) })]);
    // port 1 on loopback: refused at once (a real connection attempt, no engine needed)
    const rows = await checkPool(spec({ ...good, hosts: [{ address: '127.0.0.1', port: 1, hostKey: KEY, connectTimeoutMs: 2000 }] }));
    expect(rows[0].status).toBe('pass');
    expect(rows[1]).toEqual(expect.objectContaining({ check: 'elastic host root@127.0.0.1:1', status: 'fail', detail: expect.stringMatching(/unreachable/), fix: expect.stringMatching(/reachable over SSH/) }));
  });
});
