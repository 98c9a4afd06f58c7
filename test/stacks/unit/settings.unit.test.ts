/** stacks/settings.ts deriveSettings: the one derivation both engines use, as plain data. */
import { describe, expect, it } from 'vitest';
import { deriveSettings, LABEL_HASH, LABEL_MANAGED, MANAGED_BY } from '../../../stacks/settings.ts';
import { spec } from './fixtures.ts';

describe('deriveSettings', () => {
  it('clamps nofile to the host facts everywhere it is used', () => {
    const st = deriveSettings(spec(), { nofileMax: 20000 });
    expect(st.nofile).toEqual({ requested: 1048576, applied: 20000, clamped: true });
    expect(st.container.ulimits).toEqual([{ name: 'nofile', soft: 20000, hard: 20000 }]);
    expect(st.host.sysctlMin).toEqual({ 'fs.nr_open': 20000, 'fs.file-max': 80000 });
    expect(st.host.limitsFile.content).toContain('hard nofile 20000');
    for (const d of st.host.systemdDropIns) expect(d.content).toContain('LimitNOFILE=20000');
  });

  it('names the persisted sysctl file and the shim (both engines read them from here)', () => {
    expect(deriveSettings(spec()).host.sysctlFile).toEqual({ path: '/etc/sysctl.d/90-gridforge-nofile.conf', header: '# written by gridforge' });
    expect(deriveSettings(spec()).shim).toBeUndefined();
    const st = deriveSettings(spec((d) => (d.vobox.network.shim = { name: 'gf-shim', ip: '10.1.2.40' })));
    expect(st.shim).toEqual({ name: 'gf-shim', ip: '10.1.2.40', parent: 'eth0', prefix: 24, route: '10.1.2.20/32' });
  });

  it('labels the container as managed, and the settings hash follows what defines the container', () => {
    const a = deriveSettings(spec());
    expect(a.container.labels[LABEL_MANAGED]).toBe(MANAGED_BY);
    expect(a.container.labels[LABEL_HASH]).toBe(a.settingsHash);
    expect(deriveSettings(spec()).settingsHash).toBe(a.settingsHash);
    expect(deriveSettings(spec((d) => (d.vobox.network.ip = '10.1.2.21'))).settingsHash).not.toBe(a.settingsHash);
    expect(deriveSettings(spec(), { nofileMax: 20000 }).settingsHash).not.toBe(a.settingsHash);
  });

  it('pins JAliEn through the environment only when the spec does', () => {
    expect(deriveSettings(spec()).container.env).toEqual({ GRIDFORGE_SERVICES: 'ce,cron' });
    expect(deriveSettings(spec((d) => (d.vobox.jalien = { version: '2.1.3-1' }))).container.env.JALIEN_VERSION).toBe('2.1.3-1');
  });
});
