/**
 * The HTML reports rendered by headless Chromium (Debian `chromium`): the page content is
 * checked in the DOM chromium built, and a screenshot is taken. The record comes from a real
 * orchestration run (in-memory driver) with a rolled-back canary... and an unreachable site.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderFleetHtml, renderRolloutHtml, startRollout, type FleetRow } from '../../../stacks/rollout/index.ts';
import { MemoryDriver, writeSites } from './memory-driver.ts';
import { dumpDom, screenshot, sectionText } from './chromium.ts';

const root = mkdtempSync(join(tmpdir(), 'gf-rollout-html-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('HTML report in headless chromium', () => {
  it('shows sites by version and health, the wave timeline and failures with log tails', async () => {
    writeSites(join(root, 'sites'), 9, 3, 'ALICE');
    const d = new MemoryDriver();
    d.behaviour.set('ALICE-004', 'unhealthy');
    d.behaviour.set('ALICE-007', 'unreachable');
    const { record } = await startRollout(
      { inventory: join(root, 'sites'), target: { image: 'vobox-slurm:v2' }, options: { canary: 2, concurrency: 3, maxFailures: 2, statusTimeoutMs: 300, healthTimeoutMs: 300, siteTimeoutMs: 2000 }, driver: d, recordDir: join(root, 'rec') },
      { pollMs: 20 },
    );
    // An injection attempt in a log tail must stay text.
    record.sites.find((s) => s.site === 'ALICE-004')!.logTail += '\n<script>alert(1)</script>';
    const file = join(root, 'report.html');
    writeFileSync(file, renderRolloutHtml(record));

    const dom = await dumpDom(file);
    expect(dom).not.toContain('<script>alert(1)</script>');
    expect(dom).not.toMatch(/<(link|script|img)\b[^>]*(src|href)=/i); // self-contained
    expect(sectionText(dom, 'rollout-status')).toBe('failed');
    const summary = sectionText(dom, 'summary');
    expect(summary).toMatch(/^7 on the new version 2 failed 1 unreachable 0 skipped \/ pending 9 sites$/);

    const byVersion = sectionText(dom, 'sites-by-version');
    expect(byVersion).toContain('vobox-slurm:v2 · JAliEn 2.1.2-1 healthy 7 site(s)');
    expect(byVersion).toContain('vobox:v1 · JAliEn 2.1.2-1 healthy 1 site(s) ALICE-004');
    expect(byVersion).toContain('unknown (not reached) unreachable 1 site(s) ALICE-007');

    const timeline = sectionText(dom, 'timeline');
    expect(timeline).toMatch(/Wave 1 \(canary\) 2 site\(s\)/);
    expect(timeline).toMatch(/Wave 4 3 site\(s\)|Wave 3 3 site\(s\)/);
    for (const s of record.sites) expect(timeline).toContain(`${s.site} · ${s.state}`);
    expect(dom.match(/class="wave"/g)).toHaveLength(record.waves.length);

    const failures = sectionText(dom, 'failures');
    expect(failures).toContain('ALICE-004 rolled-back');
    expect(failures).toContain('ce=FATAL');
    expect(failures).toContain('FATAL: exited too quickly');
    expect(failures).toContain('<script>alert(1)</script>'); // shown as text
    expect(failures).toContain('ALICE-007 unreachable');
    expect(failures).toMatch(/timed out/);

    for (const s of record.sites) expect(dom).toMatch(new RegExp(`<tr data-site="${s.site}" data-state="${s.state}"`));

    const shot = await screenshot(file, join(root, 'report.png'));
    expect(shot.width).toBe(1280);
    expect(shot.bytes).toBeGreaterThan(30_000); // a blank page compresses to a few KB
  });

  it('fleet page lists every site with its health', async () => {
    const rows: FleetRow[] = [
      { site: 'CERN-A', host: '10.0.0.1:22', file: '/x/a.yaml', image: 'vobox:v2', jalienVersion: '2.1.3-1', uptimeSeconds: 3600, healthy: true, services: { ce: 'RUNNING' }, error: null, ms: 10 },
      { site: 'CERN-B', host: '10.0.0.2:22', file: '/x/b.yaml', image: 'vobox:v1', jalienVersion: '2.1.2-1', uptimeSeconds: 20, healthy: false, services: { ce: 'FATAL' }, error: null, ms: 12 },
      { site: 'CERN-C', host: '10.0.0.3:22', file: '/x/c.yaml', image: null, jalienVersion: null, uptimeSeconds: null, healthy: false, services: {}, error: 'cannot reach root@10.0.0.3:22: timed out', ms: 2000 },
    ];
    const file = join(root, 'fleet.html');
    writeFileSync(file, renderFleetHtml(rows, '/x'));
    const dom = await dumpDom(file);
    expect(sectionText(dom, 'summary')).toBe('1 healthy 1 unhealthy 1 unreachable 3 sites');
    expect(dom).toContain('<tr data-site="CERN-C" data-health="unreachable">');
    expect(sectionText(dom, 'sites')).toContain('CERN-B 10.0.0.2:22 vobox:v1 2.1.2-1 20.0s unhealthy ce=FATAL');
  });
});
