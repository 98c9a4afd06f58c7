/**
 * Output files are never written through a temporary someone else planted: `render -o`, the
 * rollout and fleet HTML pages, the rollout record and `image render --context` used to write to a
 * predictable temporary (`<out>.tmp-<pid>`, `.<name>.<pid>.tmp`, `<ctx>.tmp-<pid>-<ms>`) and follow
 * a symlink there, so root overwrote (and chmodded) whatever it pointed at. Each writer runs with a
 * symlink planted at its old temporary name pointing at a 0600 victim: the victim keeps its content
 * and mode, the output is a regular file, and no temporary of ours is left beside it. The CLI runs
 * from `sh -c '... exec node ...'` so its pid is the `$$` the planted name was made with.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execa } from 'execa';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveRecord, startRollout } from '../../../stacks/rollout/index.ts';
import { loadConfig } from '../../../scripts/cli/project-config.ts';
import { renderImage, writeContext } from '../../../images/render.ts';
import { MemoryDriver, writeSites } from './memory-driver.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'scripts/bin/gridforge.mjs');
const SECRET = 'victim: root-only content\n';

let root: string;
let victimDir: string;
let victim: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'gf-tempfiles-'));
  victimDir = join(root, 'victim');
  mkdirSync(victimDir);
  victim = join(victimDir, 'secret');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshVictim(): void {
  writeFileSync(victim, SECRET);
  chmodSync(victim, 0o600);
}

function expectVictimUntouched(): void {
  expect(lstatSync(victim).isFile()).toBe(true);
  expect(readFileSync(victim, 'utf8')).toBe(SECRET);
  expect(statSync(victim).mode & 0o777).toBe(0o600);
  expect(readdirSync(victimDir)).toEqual(['secret']);
}

/** The output folder holds the output, the attacker's links, and nothing else (no temporary of ours). */
function expectOnly(dir: string, output: string, planted: (name: string) => boolean): void {
  const left = readdirSync(dir).filter((n) => n !== output && !planted(n));
  expect(left).toEqual([]);
  expect(lstatSync(join(dir, output)).isFile()).toBe(true);
}

/** Run the CLI as the pid `$$` of a shell that first plants a symlink at `<planted with $$>`. */
async function cliWithPlantedLink(plantedTemplate: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `ln -s "$GF_VICTIM" "${plantedTemplate}" || exit 99; exec node "$GF_CLI" "$@"`;
  const r = await execa('sh', ['-c', script, 'sh', ...args], { cwd: ROOT, reject: false, env: { GF_VICTIM: victim, GF_CLI: CLI, GRIDFORGE_QUIET: '1' } });
  expect(r.exitCode, r.stderr).not.toBe(99);
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A finished rollout of three in-memory sites (test/stacks/rollout/memory-driver.ts), recorded in `<root>/<tag>`. */
async function smallRollout(tag: string) {
  const rec = join(root, tag);
  writeSites(join(root, `sites-${tag}`), 3, 2, 'TMPF');
  const { record, path } = await startRollout(
    { inventory: join(root, `sites-${tag}`), target: { image: 'vobox-slurm:v2' }, options: { canary: 1, concurrency: 2, maxFailures: 1, statusTimeoutMs: 300, healthTimeoutMs: 300, siteTimeoutMs: 2000 }, driver: new MemoryDriver(), recordDir: rec },
    { pollMs: 20 },
  );
  return { record, path, rec };
}

describe('writers never follow a planted temporary', () => {
  it('render jobagent-startup -o: victim unchanged, script 0755, no temporary left', async () => {
    freshVictim();
    const dir = join(root, 'render');
    mkdirSync(dir);
    const out = join(dir, 'agent.sh');
    const r = await cliWithPlantedLink(`${out}.tmp-$$`, ['render', 'jobagent-startup', '--site', 'sites/example.yaml', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expectVictimUntouched();
    expect(readFileSync(out, 'utf8')).toMatch(/^#!\/bin\/bash\n/);
    expect(statSync(out).mode & 0o777).toBe(0o755);
    expectOnly(dir, 'agent.sh', (n) => /^agent\.sh\.tmp-\d+$/.test(n));
  });

  it('the rollout record (saveRecord): victim unchanged, no temporary left', async () => {
    freshVictim();
    const { record, path, rec } = await smallRollout('rec-store');
    // The record store's old temporary: `.<name>.<pid>.tmp` of this process.
    const planted = join(rec, `.${basename(path)}.${process.pid}.tmp`);
    symlinkSync(victim, planted);
    saveRecord(path, record);
    expectVictimUntouched();
    expect(JSON.parse(readFileSync(path, 'utf8')).id).toBe(record.id);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expectOnly(rec, basename(path), (n) => n === basename(planted) || n === 'locks');
  });

  it('rollout status --html: victim unchanged, no temporary left', async () => {
    freshVictim();
    const { record, rec } = await smallRollout('rec-html');
    const dir = join(root, 'rollout-html');
    mkdirSync(dir);
    const html = join(dir, 'report.html');
    const r = await cliWithPlantedLink(`${dir}/.report.html.$$.tmp`, ['rollout', 'status', record.id, '--record-dir', rec, '--html', html]);
    expect([0, 1], r.stderr).toContain(r.code);
    expectVictimUntouched();
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/i);
    expect(statSync(html).mode & 0o777).toBe(0o644);
    expectOnly(dir, 'report.html', (n) => /^\.report\.html\.\d+\.tmp$/.test(n));
  });

  it('fleet status --html: victim unchanged, no temporary left', async () => {
    freshVictim();
    const sites = join(root, 'fleet-sites');
    mkdirSync(sites);
    // Unreachable without touching the network: the identity file does not exist.
    writeFileSync(
      join(sites, 'a.yaml'),
      `site: GFTMP-A
host: { address: 127.0.0.1, port: 1, hostKey: "SHA256:${'A'.repeat(43)}", identityFile: ${join(root, 'no-such-key')} }
vobox:
  name: gftmp-a
  image: x/vobox:1
  hostname: voboxa.example.org
  network: { name: sitenet, parent: eth0, subnet: 10.1.2.0/24, gateway: 10.1.2.1, ip: 10.1.2.20, mac: "02:42:0a:01:02:14" }
  services: [cron]
  volumes: { home: /srv/a/home, gridSecurity: /srv/a/gs }
`,
    );
    const dir = join(root, 'fleet-html');
    mkdirSync(dir);
    const html = join(dir, 'fleet.html');
    const r = await cliWithPlantedLink(`${dir}/.fleet.html.$$.tmp`, ['fleet', 'status', sites, '--timeout', '5', '--html', html]);
    expect(r.code, r.stderr).toBe(0);
    expectVictimUntouched();
    expect(readFileSync(html, 'utf8')).toContain('GFTMP-A');
    expectOnly(dir, 'fleet.html', (n) => /^\.fleet\.html\.\d+\.tmp$/.test(n));
  });

  it('image render --context (writeContext): nothing written through links at the old names, no temporary left', async () => {
    // The old name was `<ctx>.tmp-<pid>-<Date.now()>`: the clock is held still (only Date is faked)
    // so the planted name is the one the old code would use; it points at a folder holding a 0600
    // file named like a context file.
    const dir = join(root, 'context');
    mkdirSync(dir);
    const ctx = join(dir, 'ctx');
    const victimCtx = join(root, 'victim-ctx');
    mkdirSync(victimCtx);
    writeFileSync(join(victimCtx, 'Dockerfile'), SECRET);
    chmodSync(join(victimCtx, 'Dockerfile'), 0o600);
    const rendered = renderImage(loadConfig(join(ROOT, 'gridforge.yaml')), 'vobox-slurm');
    const now = Date.now();
    vi.useFakeTimers({ toFake: ['Date'], now });
    symlinkSync(victimCtx, `${ctx}.tmp-${process.pid}-${now}`);
    try {
      await writeContext(rendered, ctx);
    } finally {
      vi.useRealTimers();
    }
    expect(readFileSync(join(victimCtx, 'Dockerfile'), 'utf8')).toBe(SECRET);
    expect(statSync(join(victimCtx, 'Dockerfile')).mode & 0o777).toBe(0o600);
    expect(readdirSync(victimCtx)).toEqual(['Dockerfile']);
    expect(lstatSync(ctx).isDirectory()).toBe(true);
    expect(statSync(ctx).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(ctx, 'Dockerfile'), 'utf8')).toBe(rendered.dockerfile);
    expect(statSync(join(ctx, 'rootfs/usr/local/bin/systemctl')).mode & 0o777).toBe(0o755);
    const left = readdirSync(dir).filter((n) => n !== 'ctx' && !n.startsWith('ctx.tmp-'));
    expect(left).toEqual([]);
    expect(readdirSync(dir).filter((n) => n.startsWith('ctx.tmp-')).every((n) => lstatSync(join(dir, n)).isSymbolicLink())).toBe(true);
  });
});
