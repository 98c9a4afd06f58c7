/**
 * Rollouts on real test hosts (test/support/testhost/) through the real deploy engine (stacks/index.ts) and the
 * real CLI: 6 hosts with their own sshd + dockerd carry 12 VO-boxes (the images engineer's
 * vobox-slurm build; v2 and a broken release derived from it), plus one site whose host is down.
 *
 *  1. a broken image: the canaries fail their health gate, are rolled back, the rollout stops;
 *  2. v2 with --max-failures 1: the unreachable site is reported (timeout) and the rollout goes
 *     on; the CLI is SIGKILLed mid-wave and `rollout resume` finishes with no site deployed twice;
 *  3. a JAliEn version one site's CVMFS does not have: that site's CE fails, it is rolled back
 *     to its previous version, the others report the new version; HTML report in chromium;
 *  4. `rollout abort --rollback` returns the changed sites to their previous JAliEn version;
 *  5. fleet status over all sites, including the unreachable one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildImages, ceVersion, claimPrefix, createFleet, releasePrefix, IMG_BROKEN, IMG_V1, IMG_V2, inspectVobox, JALIEN_NEW, JALIEN_OLD, removeImages, type Fleet, type FleetSite } from './fleet-fixture.ts';
import { dumpDom, sectionText } from './chromium.ts';
import type { RolloutRecord } from '../../../stacks/rollout/types.ts';

const REPO = resolve(import.meta.dirname, '../../..');
const CLI = join(REPO, 'scripts/bin/gridforge.mjs');
const root = mkdtempSync(join(tmpdir(), 'gf-rollout-hosts-'));
const recordDir = join(root, 'records');
let fleet: Fleet;
let real: FleetSite[];

/** Fast gates for tests: short status timeout for the host that is down. */
const TIMEOUTS = ['--status-timeout', '8', '--health-timeout', '90', '--site-timeout', '240'];

function cli(args: string[]) {
  return execa('node', [CLI, ...args], { cwd: root, reject: false, env: { ...process.env, GRIDFORGE_QUIET: '0' } });
}

function readRecord(path: string): RolloutRecord {
  return JSON.parse(readFileSync(path, 'utf8')) as RolloutRecord;
}

beforeAll(async () => {
  const t0 = Date.now();
  await claimPrefix(); // a concurrent run of this suite waits instead of wiping our hosts
  await buildImages(REPO);
  fleet = await createFleet(root, 6, 2);
  real = fleet.sites.filter((s) => s.host);
  // Initial state: every real site runs v1 with JAliEn pinned to JALIEN_OLD, deployed by the
  // deploy engine (hosts in parallel, the two VO-boxes of a host one after the other).
  const { loadSiteSpec, deploySite } = await import('../../../stacks/index.ts');
  await Promise.all(
    fleet.hosts.map(async (h) => {
      for (const s of real.filter((x) => x.host === h)) {
        await deploySite(loadSiteSpec(s.file), { yes: true, healthTimeoutMs: 120_000 });
      }
    }),
  );
  process.stderr.write(`rollout-hosts: fleet of ${real.length} VO-boxes on ${fleet.hosts.length} hosts ready in ${Math.round((Date.now() - t0) / 1000)} s\n`);
}, 900_000);

afterAll(async () => {
  await fleet?.destroy().catch((e) => process.stderr.write(`fleet cleanup: ${e}\n`));
  await removeImages();
  rmSync(root, { recursive: true, force: true });
  releasePrefix();
});

describe('rollout over real test hosts', () => {
  it('a broken release: the canaries fail their health gate, are rolled back, and the rollout stops', async () => {
    const before = await Promise.all(real.map(inspectVobox));
    const rec = join(recordDir, 'broken.json');
    const r = await cli(['rollout', fleet.sitesDir, '--image', IMG_BROKEN, '--canary', '2', '--concurrency', '4', '--record', rec, '--json', ...TIMEOUTS]);
    expect(r.exitCode, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('stopped');
    const record = readRecord(rec);
    const canaries = record.sites.filter((s) => s.canary);
    // canaries: the first site of the first hosts (different hosts catch more)
    expect(canaries.map((s) => s.site)).toEqual(['GFRO-H1-A', 'GFRO-H2-A']);
    const canaryNames = canaries.map((s) => s.site);
    for (const c of canaries) {
      expect(c.state).toBe('rolled-back');
      expect(c.error).toMatch(/rsyslog FATAL/);
      expect(c.logTail ?? '').not.toBe(''); // the deploy engine's tail of the first failing service
    }
    expect(record.sites.filter((s) => !s.canary).every((s) => s.state === 'skipped' && s.deploys === 0)).toBe(true);
    // On the hosts: the canaries run v1 again, healthy; nobody else was touched.
    const after = await Promise.all(real.map(inspectVobox));
    for (const [i, s] of real.entries()) {
      expect(after[i]!.image, s.site).toBe(IMG_V1);
      expect(after[i]!.running, s.site).toBe(true);
      if (!canaryNames.includes(s.site)) expect(after[i]!.created, s.site).toBe(before[i]!.created);
    }
    for (const c of real.filter((s) => canaryNames.includes(s.site))) {
      const st = await c.host!.exec(`docker exec ${c.container} supervisorctl status`);
      expect(st.stdout).toMatch(/rsyslog\s+RUNNING/);
    }
    // A second rollout while nothing runs is not refused: the locks were released.
    expect(readFileSync(rec, 'utf8')).toContain('"runner": null');
  }, 300_000);

  it('v2 with --max-failures 1: the unreachable site is reported and the rollout goes on; killed mid-wave, resume finishes it with no site deployed twice', async () => {
    const rec = join(recordDir, 'v2.json');
    const child: ResultPromise = execa('node', [CLI, 'rollout', fleet.sitesDir, '--image', IMG_V2, '--canary', '1', '--concurrency', '3', '--max-failures', '1', '--record', rec, ...TIMEOUTS], { cwd: root, reject: false });
    // Kill the CLI (SIGKILL: no cleanup at all) once sites are finished and others are in flight.
    let killedAt = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 300_000) {
      await new Promise((r) => setTimeout(r, 250));
      if (!existsSync(rec)) continue;
      let record: RolloutRecord;
      try {
        record = readRecord(rec);
      } catch {
        continue;
      }
      const done = record.sites.filter((s) => s.state === 'done').length;
      const inFlight = record.sites.filter((s) => ['deploying', 'verifying'].includes(s.state)).length;
      if (done >= 3 && inFlight >= 1) {
        child.kill('SIGKILL');
        killedAt = Date.now();
        break;
      }
    }
    const killed = await child;
    expect(killedAt, 'the rollout finished before it could be killed').toBeGreaterThan(0);
    expect(killed.signal).toBe('SIGKILL');

    const atKill = readRecord(rec);
    expect(atKill.runner).not.toBeNull(); // the killed runner never cleaned up
    const finishedBefore = atKill.sites.filter((s) => s.state === 'done').map((s) => s.site);
    const verifyingAtKill = atKill.sites.filter((s) => s.state === 'verifying').map((s) => s.site);
    const containersAtKill = new Map<string, string>();
    for (const s of real) {
      const i = await inspectVobox(s);
      if (finishedBefore.includes(s.site)) containersAtKill.set(s.site, i!.created);
    }

    const status = await cli(['rollout', 'status', rec, '--json']);
    expect(status.exitCode).toBe(0);
    expect(JSON.parse(status.stdout).status).toBe('running');

    const resumed = await cli(['rollout', 'resume', rec, '--json']);
    const out = JSON.parse(resumed.stdout);
    // The host that is down fails the rollout (exit 1), but it went on past it (--max-failures 1).
    expect(resumed.exitCode, resumed.stderr).toBe(1);
    expect(out.status).toBe('failed');
    const record = readRecord(rec);
    const by = Object.fromEntries(record.sites.map((s) => [s.site, s]));
    expect(by[fleet.gone].state).toBe('unreachable');
    expect(by[fleet.gone].error).toMatch(/cannot reach|timed out|EHOSTUNREACH/);
    expect(by[fleet.gone].deploys).toBe(0);
    for (const s of real) {
      expect(by[s.site].state, s.site).toBe('done');
      const i = await inspectVobox(s);
      expect(i!.image, s.site).toBe(IMG_V2);
      expect(i!.running).toBe(true);
      // finished before the kill: never deployed again (same container, one deploy in the record)
      if (finishedBefore.includes(s.site)) {
        expect(i!.created, s.site).toBe(containersAtKill.get(s.site));
        expect(by[s.site].deploys, s.site).toBe(1);
      }
      // deployed but not yet verified at the kill: adopted by resume, not deployed again
      if (verifyingAtKill.includes(s.site)) expect(by[s.site].deploys, s.site).toBe(1);
      // recorded "deploying" at the kill: redeployed only if the killed run had not got that far
      expect(by[s.site].deploys, s.site).toBeLessThanOrEqual(2);
    }
    expect(record.runs.map((r) => r.kind)).toEqual(['start', 'resume']);
    expect(record.runner).toBeNull();
    // A finished rollout cannot be resumed again.
    const again = await cli(['rollout', 'resume', rec]);
    expect(again.exitCode).toBe(2);
  }, 600_000);

  it('a JAliEn version missing at one site: its CE fails, it is rolled back to the previous version, the others report the new one; HTML report in chromium', async () => {
    const rec = join(recordDir, 'jalien.json');
    const html = join(root, 'jalien.html');
    const r = await cli(['rollout', fleet.sitesDir, '--jalien', JALIEN_NEW, '--exclude', fleet.gone, '--canary', '1', '--concurrency', '4', '--max-failures', '1', '--record', rec, '--html', html, ...TIMEOUTS]);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toContain('11/12 on the new version, 1 failed');
    const record = readRecord(rec);
    const by = Object.fromEntries(record.sites.map((s) => [s.site, s]));
    expect(record.sites).toHaveLength(12);
    expect(by[fleet.lagging].state).toBe('rolled-back');
    expect(by[fleet.lagging].logTail).toMatch(/JAliEn\/2\.1\.4-1/);
    for (const s of real) {
      const v = await ceVersion(s);
      const i = await inspectVobox(s);
      expect(i!.image, s.site).toBe(IMG_V2);
      if (s.site === fleet.lagging) {
        expect(v, s.site).toBe(JALIEN_OLD);
        expect(i!.jalien).toBe(JALIEN_OLD);
      } else {
        expect(by[s.site].state, s.site).toBe('done');
        expect(v, s.site).toBe(JALIEN_NEW);
      }
    }

    // Keep the report of this real rollout when asked (the README's screenshot is made from it).
    if (process.env.GRIDFORGE_ROLLOUT_KEEP_HTML) copyFileSync(html, process.env.GRIDFORGE_ROLLOUT_KEEP_HTML);
    const dom = await dumpDom(html);
    expect(sectionText(dom, 'rollout-status')).toBe('failed');
    expect(sectionText(dom, 'summary')).toMatch(/^11 on the new version 1 failed 0 unreachable 0 skipped \/ pending 12 sites$/);
    const groups = sectionText(dom, 'sites-by-version');
    expect(groups).toContain(`${IMG_V2} · JAliEn ${JALIEN_NEW} healthy 11 site(s)`);
    expect(groups).toContain(`${IMG_V2} · JAliEn ${JALIEN_OLD} healthy 1 site(s) ${fleet.lagging}`);
    const timeline = sectionText(dom, 'timeline');
    expect(timeline).toContain('Wave 1 (canary) 1 site(s)');
    for (const s of record.sites) expect(timeline).toContain(`${s.site} · ${s.state}`);
    const failures = sectionText(dom, 'failures');
    expect(failures).toContain(`${fleet.lagging} rolled-back`);
    expect(failures).toMatch(/Unable to locate a modulefile for 'JAliEn\/2\.1\.4-1'/);
  }, 400_000);

  it('abort --rollback returns every site the JAliEn rollout changed to its previous version', async () => {
    const rec = join(recordDir, 'jalien.json');
    const r = await cli(['rollout', 'abort', rec, '--rollback', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('aborted');
    const by = Object.fromEntries(readRecord(rec).sites.map((s) => [s.site, s]));
    for (const s of real) {
      expect(by[s.site].state, s.site).toBe(s.site === fleet.lagging ? 'rolled-back' : 'reverted');
      expect(await ceVersion(s), s.site).toBe(JALIEN_OLD);
      expect((await inspectVobox(s))!.image, s.site).toBe(IMG_V2);
    }
    expect(readRecord(rec).runs.map((x) => x.kind)).toEqual(['start', 'abort']);
  }, 400_000);

  it('fleet status: every site in parallel, the unreachable one reported within its timeout', async () => {
    const t0 = Date.now();
    const r = await cli(['fleet', 'status', fleet.sitesDir, '--timeout', '8', '--json', '--check']);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(r.exitCode).toBe(1); // --check: one site is unreachable
    const out = JSON.parse(r.stdout);
    expect(out.total).toBe(13);
    const by = Object.fromEntries((out.sites as { site: string; image: string; jalienVersion: string; healthy: boolean; error: string | null; uptimeSeconds: number }[]).map((s) => [s.site, s]));
    expect(by[fleet.gone].error).toBeTruthy();
    for (const s of real) {
      expect(by[s.site]).toMatchObject({ image: IMG_V2, healthy: true, error: null });
      expect(by[s.site].jalienVersion).toBe(JALIEN_OLD); // after the abort --rollback
      expect(by[s.site].uptimeSeconds).toBeGreaterThanOrEqual(0);
    }
    const table = await cli(['fleet', 'status', fleet.sitesDir, '--timeout', '8', '--only', 'GFRO-H2-*']);
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toContain('GFRO-H2-A');
    expect(table.stdout).not.toContain('GFRO-H3-A');
    expect(table.stdout).toContain('2/2 site(s) healthy');
  }, 120_000);
});
