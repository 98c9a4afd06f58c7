/** stacks/spec.ts parseSiteSpec: defaults, and errors that name the key at fault (UsageError). */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../base/errors.ts';
import { parseSiteSpec } from '../../../stacks/spec.ts';
import { siteDoc } from './fixtures.ts';

function fails(mutate: (doc: any) => void): UsageError {
  const doc = siteDoc();
  mutate(doc);
  try {
    parseSiteSpec(doc, 'unit.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('accepted');
}

describe('parseSiteSpec', () => {
  it('fills defaults and lower-cases the MAC', () => {
    const s = parseSiteSpec(siteDoc(), 'unit.yaml');
    expect(s.host.port).toBe(22);
    expect(s.host.dockerSocket).toBe('/var/run/docker.sock');
    expect(s.vobox.network.mac).toBe('02:42:0a:01:02:14');
    expect(s.vobox.privileged).toBe(false);
    expect(s.vobox.logs).toEqual({ maxSize: '50m', maxFile: 5 });
  });

  it('names file and key for values that would reach a shell', () => {
    expect(fails((d) => (d.vobox.cvmfs.mount = "/cvmfs' ; reboot #")).where).toBe('unit.yaml: vobox.cvmfs.mount');
    expect(fails((d) => (d.vobox.network.shim = { name: 'a b', ip: '10.1.2.40' })).where).toBe('unit.yaml: vobox.network.shim.name');
    expect(fails((d) => (d.vobox.volumes.home = '/srv/$(id)')).where).toBe('unit.yaml: vobox.volumes.home');
  });

  it('refuses addresses outside the subnet, a multicast MAC and unknown keys', () => {
    expect(fails((d) => (d.vobox.network.ip = '10.1.3.20')).where).toBe('unit.yaml: vobox.network.ip');
    expect(fails((d) => (d.vobox.network.mac = '03:42:0a:01:02:14')).where).toBe('unit.yaml: vobox.network.mac');
    const e = fails((d) => (d.vobox.colour = 'blue'));
    expect(e.hint).toMatch(/colour/);
  });

  it('requires a host key pin', () => {
    expect(fails((d) => delete d.host.hostKey).where).toBe('unit.yaml: host.hostKey');
  });
});
