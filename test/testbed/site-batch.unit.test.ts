/**
 * The VO-box's Slurm client from the site file (`vobox.batch.slurm`, sites/README.md "Batch client"):
 * stacks/spec.ts accepts a slurm.conf or configless controller plus the munge key, and
 * stacks/settings.ts binds them read-only into the VO-box (or sets SLURM_CONF_SERVER), the same
 * settings both deploy engines use. The testbed deploys its VO-box through exactly this.
 */
import { describe, expect, it } from 'vitest';
import { deriveSettings } from '../../stacks/settings.ts';
import { spec } from '../stacks/unit/fixtures.ts';

describe('site file vobox.batch.slurm', () => {
  it('slurm.conf + munge key: both bound read-only, the key where gridforge-batch-start installs it from', () => {
    const s = deriveSettings(spec((d) => { d.vobox.batch = { slurm: { conf: '/etc/slurm/slurm.conf', mungeKey: '/etc/munge/munge.key' } }; }));
    expect(s.container.binds).toContain('/etc/munge/munge.key:/etc/gridforge/site/munge.key:ro');
    expect(s.container.binds).toContain('/etc/slurm/slurm.conf:/etc/slurm/slurm.conf:ro');
    expect(s.container.env.SLURM_CONF_SERVER).toBeUndefined();
  });

  it('configless: SLURM_CONF_SERVER names the controller, no slurm.conf bound', () => {
    const s = deriveSettings(spec((d) => { d.vobox.batch = { slurm: { configless: 'slurmctl.example.org:6817', mungeKey: '/etc/munge/munge.key' } }; }));
    expect(s.container.env.SLURM_CONF_SERVER).toBe('slurmctl.example.org:6817');
    expect(s.container.binds.some((b) => b.includes('slurm.conf'))).toBe(false);
  });

  it('refuses both or neither of conf and configless, and unsafe paths, naming the key', () => {
    const where = (mutate: (d: any) => void) => {
      try {
        spec(mutate);
      } catch (e) {
        return `${(e as Error).message} @ ${(e as { where?: string }).where}`;
      }
      return 'accepted';
    };
    expect(where((d) => { d.vobox.batch = { slurm: { conf: '/a', configless: 'h:1', mungeKey: '/k' } }; })).toMatch(/exactly one of conf.* @ unit\.yaml: vobox\.batch\.slurm$/);
    expect(where((d) => { d.vobox.batch = { slurm: { mungeKey: '/k' } }; })).toMatch(/exactly one of conf/);
    expect(where((d) => { d.vobox.batch = { slurm: { conf: '/etc/slurm/$(id).conf', mungeKey: '/k' } }; })).toMatch(/@ unit\.yaml: vobox\.batch\.slurm\.conf$/);
  });

  it('no batch key: nothing added (existing site files deploy unchanged)', () => {
    const s = deriveSettings(spec());
    expect(s.container.binds).toHaveLength(3);
  });
});
