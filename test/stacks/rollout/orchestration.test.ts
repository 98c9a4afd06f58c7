/**
 * Fast tests of the rollout orchestration (planner, inventory, executor, record, resume, locks,
 * abort) against an in-memory driver. They check the orchestration's own decisions; the real
 * hosts, SSH and Docker are covered by rollout-hosts.test.ts.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  abortRollout,
  dryRunRollout,
  globToRegExp,
  interleaveByHost,
  loadInventory,
  loadRecord,
  planRollout,
  planWaves,
  resumeRollout,
  saveRecord,
  startRollout,
  summarize,
  formatRolloutTable,
  type RolloutOptions,
} from '../../../stacks/rollout/index.ts';
import { GridforgeError, UsageError } from '../../../base/errors.ts';
import { MemoryDriver, writeSites } from './memory-driver.ts';

const root = mkdtempSync(join(tmpdir(), 'gf-rollout-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
let dir: string;
let sitesDir: string;
let recordDir: string;
beforeEach(() => {
  dir = join(root, `case-${n++}`);
  sitesDir = join(dir, 'sites');
  recordDir = join(dir, 'records');
});

const fast: Partial<RolloutOptions> = { statusTimeoutMs: 300, siteTimeoutMs: 2000, healthTimeoutMs: 300 };

describe('wave planner', () => {
  const sites = Array.from({ length: 10 }, (_, i) => ({ site: `S${i}`, host: `h${i % 3}`, canary: i === 7 }));

  it('puts canaries first (inventory-marked first), then waves of at most --concurrency', () => {
    const waves = planWaves(sites, { canary: 2, concurrency: 3 });
    expect(waves[0]).toMatchObject({ kind: 'canary' });
    expect(waves[0].sites.map((s) => s.site)).toEqual(['S7', 'S0']);
    expect(waves.slice(1).every((w) => w.kind === 'wave' && w.sites.length <= 3)).toBe(true);
    const all = waves.flatMap((w) => w.sites.map((s) => s.site));
    expect(new Set(all).size).toBe(10);
    expect(all).toHaveLength(10);
  });

  it('spreads VO-boxes of one host over different waves', () => {
    const ordered = interleaveByHost(sites.filter((s) => !s.canary));
    expect(ordered.slice(0, 3).map((s) => s.host)).toEqual(['h0', 'h1', 'h2']);
    const waves = planWaves(sites, { canary: 0, concurrency: 3 });
    for (const w of waves) expect(new Set(w.sites.map((s) => s.host)).size).toBe(w.sites.length);
  });

  it('site globs', () => {
    expect(globToRegExp('CERN-*').test('cern-zenith')).toBe(true);
    expect(globToRegExp('S?').test('S10')).toBe(false);
    expect(globToRegExp('S[12]*').test('S20')).toBe(true);
    expect(globToRegExp('S[12]*').test('S30')).toBe(false);
  });
});

describe('inventory', () => {
  it('reads a sites dir or an inventory file, applies --only/--exclude, refuses bad input with the key at fault', async () => {
    writeSites(sitesDir, 5, 2);
    const d = new MemoryDriver();
    expect((await loadInventory(sitesDir, d)).map((s) => s.site)).toEqual(['SITE-000', 'SITE-001', 'SITE-002', 'SITE-003', 'SITE-004']);
    expect((await loadInventory(sitesDir, d, { only: ['SITE-00[0-2]'], exclude: ['*1'] })).map((s) => s.site)).toEqual(['SITE-000', 'SITE-002']);

    const inv = join(dir, 'inventory.yaml');
    writeFileSync(inv, 'sites:\n  - sites/site-003.yaml\n  - { file: sites/site-001.yaml, canary: true }\n');
    const listed = await loadInventory(inv, d);
    expect(listed.map((s) => [s.site, s.canary])).toEqual([['SITE-003', false], ['SITE-001', true]]);

    writeFileSync(inv, 'sites:\n  - { path: sites/site-003.yaml }\n');
    const err = await loadInventory(inv, d).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.where).toContain('inventory.yaml: sites.0');

    writeFileSync(join(sitesDir, 'dup.yaml'), 'site: SITE-000\nhost: { address: 10.0.0.99 }\n');
    const dup = await loadInventory(sitesDir, d).catch((e) => e);
    expect(dup).toBeInstanceOf(UsageError);
    expect(dup.message).toContain('SITE-000');
    await expect(loadInventory(join(dir, 'nope'), d)).rejects.toBeInstanceOf(UsageError);
  });
});

describe('rollout executor', () => {
  it('all sites healthy: every site done, record on disk, exit-worthy summary', async () => {
    const names = writeSites(sitesDir, 7, 3);
    const d = new MemoryDriver();
    const lines: string[] = [];
    const { record, path } = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, canary: 2, concurrency: 3 }, driver: d, recordDir }, { onProgress: (l) => lines.push(l), pollMs: 20 });
    expect(record.status).toBe('completed');
    expect(record.sites.every((s) => s.state === 'done' && s.deploys === 1)).toBe(true);
    expect(names.every((name) => d.sites.get(name)!.image === 'vobox:v2')).toBe(true);
    // canaries finished before any later wave started
    const canaryEnd = Math.max(...d.deployLog.filter((e) => record.sites.find((s) => s.site === e.site)!.canary).map((e) => e.at));
    const firstWave = Math.min(...d.deployLog.filter((e) => !record.sites.find((s) => s.site === e.site)!.canary).map((e) => e.at));
    expect(firstWave).toBeGreaterThanOrEqual(canaryEnd);
    const disk = loadRecord(path);
    expect(disk.sites.map((s) => s.state)).toEqual(record.sites.map((s) => s.state));
    expect(disk.runner).toBeNull();
    expect(readdirSync(join(recordDir, 'locks'))).toEqual([]); // locks released
    expect(lines.some((l) => l.includes('wave 1/'))).toBe(true);
    expect(formatRolloutTable(record)).toContain('7/7 on the new version');
  });

  it('a failing canary stops the rollout and is rolled back; nothing else is touched', async () => {
    writeSites(sitesDir, 6, 3);
    const d = new MemoryDriver();
    d.behaviour.set('SITE-000', 'unhealthy');
    const { record } = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, canary: 1, concurrency: 2 }, driver: d, recordDir }, { pollMs: 20 });
    expect(record.status).toBe('stopped');
    const canary = record.sites.find((s) => s.site === 'SITE-000')!;
    expect(canary.state).toBe('rolled-back');
    expect(canary.error).toContain('ce=FATAL');
    expect(canary.logTail).toContain('FATAL');
    expect(d.sites.get('SITE-000')).toMatchObject({ image: 'vobox:v1', healthy: true });
    expect(record.sites.filter((s) => s.site !== 'SITE-000').every((s) => s.state === 'skipped' && s.deploys === 0)).toBe(true);
    expect(d.deployLog.map((e) => e.site)).toEqual(['SITE-000']);
  });

  it('--max-failures 1 goes on past one failure; an unreachable site times out and is reported; the engine-restored site is not restored again', async () => {
    writeSites(sitesDir, 8, 4);
    const d = new MemoryDriver();
    d.behaviour.set('SITE-000', 'throw-restored');
    d.behaviour.set('SITE-005', 'unreachable');
    const t0 = Date.now();
    const { record } = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, canary: 1, concurrency: 3, maxFailures: 2 }, driver: d, recordDir }, { pollMs: 20 });
    expect(Date.now() - t0).toBeLessThan(5000);
    const by = Object.fromEntries(record.sites.map((s) => [s.site, s]));
    expect(by['SITE-000'].state).toBe('rolled-back');
    expect(by['SITE-000'].restores).toBe(0); // the engine had already restored it
    expect(by['SITE-005'].state).toBe('unreachable');
    expect(by['SITE-005'].error).toMatch(/timed out/);
    expect(record.sites.filter((s) => s.state === 'done')).toHaveLength(6);
    expect(record.status).toBe('failed');
    expect(summarize(record)).toMatchObject({ succeeded: 6, failed: 2, unreachable: 1 });
  });

  it('a deploy that leaves the new, broken container is rolled back by the orchestration', async () => {
    writeSites(sitesDir, 3, 3);
    const d = new MemoryDriver();
    d.behaviour.set('SITE-001', 'throw');
    const { record } = await startRollout({ inventory: sitesDir, target: { jalienVersion: '2.1.4-1' }, options: { ...fast, canary: 0, concurrency: 3, maxFailures: 5 }, driver: d, recordDir }, { pollMs: 20 });
    const s = record.sites.find((x) => x.site === 'SITE-001')!;
    expect(s.state).toBe('rolled-back');
    expect(s.restores).toBe(1);
    expect(d.restoreLog).toEqual([{ site: 'SITE-001', previous: { image: 'vobox:v1', jalienVersion: '2.1.2-1' } }]);
    expect(d.sites.get('SITE-001')).toMatchObject({ image: 'vobox:v1', jalienVersion: '2.1.2-1' });
  });

  it('a site already on the target is left alone; dry run changes nothing', async () => {
    writeSites(sitesDir, 3, 1);
    const d = new MemoryDriver();
    await d.describe(join(sitesDir, 'site-001.yaml'));
    d.sites.get('SITE-001')!.image = 'vobox:v2';
    const dry = await dryRunRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: fast, driver: d });
    expect(dry.sites.map((s) => s.change)).toEqual([true, false, true]);
    expect(d.deployLog).toHaveLength(0);
    expect(existsSync(recordDir)).toBe(false);
    const { record } = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, concurrency: 2 }, driver: d, recordDir }, { pollMs: 20 });
    expect(record.sites.find((s) => s.site === 'SITE-001')!.state).toBe('unchanged');
    expect(d.deployLog.map((e) => e.site).sort()).toEqual(['SITE-000', 'SITE-002']);
  });

  it('refuses a bad target before touching anything', async () => {
    writeSites(sitesDir, 2, 1);
    const d = new MemoryDriver();
    await expect(startRollout({ inventory: sitesDir, target: {}, driver: d, recordDir })).rejects.toBeInstanceOf(UsageError);
    await expect(startRollout({ inventory: sitesDir, target: { jalienVersion: 'latest' }, driver: d, recordDir })).rejects.toBeInstanceOf(UsageError);
    expect(existsSync(recordDir)).toBe(false);
  });
});

describe('resume, locks, abort', () => {
  /** A pid that surely is not running any more. */
  function deadPid(): number {
    const r = spawnSync('sh', ['-c', 'echo $$']);
    return Number(String(r.stdout).trim());
  }

  it('resume after a crash: finished sites are not deployed again, half-done sites are adopted or finished', async () => {
    writeSites(sitesDir, 6, 3);
    const d = new MemoryDriver();
    const { record } = await planRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, canary: 1, concurrency: 2 }, driver: d });
    const path = join(recordDir, `${record.id}.json`);
    // What a runner killed mid-wave leaves behind: canary done, one site deployed but not yet
    // verified, one site recorded "deploying" whose deploy never reached the host, the rest pending.
    const [a, b, c] = record.sites;
    for (const s of [a, b]) {
      d.sites.get(s.site)!.image = 'vobox:v2';
      s.previous = { image: 'vobox:v1', jalienVersion: '2.1.2-1' };
      s.deploys = 1;
    }
    a.state = 'done';
    b.state = 'verifying';
    c.state = 'deploying';
    c.deploys = 1;
    c.previous = { image: 'vobox:v1', jalienVersion: '2.1.2-1' };
    record.status = 'running';
    record.runner = { pid: deadPid(), hostname: (await import('node:os')).hostname(), startedAt: record.createdAt };
    saveRecord(path, record);

    const { record: after } = await resumeRollout({ idOrPath: record.id, driver: d, recordDir }, { pollMs: 20 });
    expect(after.status).toBe('completed');
    const deployed = d.deployLog.map((e) => e.site);
    expect(deployed).not.toContain(a.site);
    expect(deployed).not.toContain(b.site);
    expect(deployed.filter((s) => s === c.site)).toHaveLength(1);
    expect(new Set(deployed).size).toBe(deployed.length);
    expect(after.sites.every((s) => s.state === 'done')).toBe(true);
    expect(after.sites.find((s) => s.site === b.site)!.deploys).toBe(1);
    expect(after.runs.map((r) => r.kind)).toEqual(['resume']);
    // a completed rollout cannot be resumed again
    await expect(resumeRollout({ idOrPath: record.id, driver: d, recordDir })).rejects.toBeInstanceOf(UsageError);
  });

  it('two rollouts over the same sites at once: the second is refused', async () => {
    writeSites(sitesDir, 3, 3);
    const d = new MemoryDriver();
    let open!: () => void;
    d.gate = new Promise((r) => (open = r));
    const first = startRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, canary: 1 }, driver: d, recordDir }, { pollMs: 20 });
    while (d.deployLog.length === 0) await new Promise((r) => setTimeout(r, 5));
    const second = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v3' }, options: { ...fast, only: ['SITE-002'] }, driver: d, recordDir }).catch((e) => e);
    expect(second).toBeInstanceOf(GridforgeError);
    expect(second.message).toContain('another rollout is running');
    expect(second.message).toContain('SITE-002');
    open();
    d.gate = null;
    expect((await first).record.status).toBe('completed');
    // afterwards the sites are free again
    const third = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v3' }, options: { ...fast, only: ['SITE-002'] }, driver: d, recordDir }, { pollMs: 20 });
    expect(third.record.status).toBe('completed');
  });

  it('a stopped rollout resumes only with a larger failure budget; abort --rollback reverts the changed sites', async () => {
    writeSites(sitesDir, 5, 5);
    const d = new MemoryDriver();
    d.behaviour.set('SITE-002', 'unhealthy');
    const { record } = await startRollout({ inventory: sitesDir, target: { image: 'vobox:v2' }, options: { ...fast, canary: 1, concurrency: 1 }, driver: d, recordDir }, { pollMs: 20 });
    expect(record.status).toBe('stopped');
    expect(record.sites.map((s) => s.state)).toEqual(['done', 'done', 'rolled-back', 'skipped', 'skipped']);
    const refused = await resumeRollout({ idOrPath: record.id, driver: d, recordDir }).catch((e) => e);
    expect(refused).toBeInstanceOf(UsageError);
    expect(refused.hint).toContain('--max-failures 1');
    const { record: resumed } = await resumeRollout({ idOrPath: record.id, driver: d, recordDir, maxFailures: 1 }, { pollMs: 20 });
    expect(resumed.sites.map((s) => s.state)).toEqual(['done', 'done', 'rolled-back', 'done', 'done']);
    expect(resumed.sites.map((s) => s.deploys)).toEqual([1, 1, 1, 1, 1]);

    const { record: aborted } = await abortRollout({ idOrPath: record.id, driver: d, recordDir, rollback: true }, { pollMs: 20 });
    expect(aborted.status).toBe('aborted');
    expect(aborted.sites.map((s) => s.state)).toEqual(['reverted', 'reverted', 'rolled-back', 'reverted', 'reverted']);
    for (const name of ['SITE-000', 'SITE-001', 'SITE-003', 'SITE-004']) expect(d.sites.get(name)!.image).toBe('vobox:v1');
    const onDisk = JSON.parse(readFileSync(join(recordDir, `${record.id}.json`), 'utf8'));
    expect(onDisk.status).toBe('aborted');
  });
});
