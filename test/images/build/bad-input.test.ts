/**
 * Bad input through the real CLI: each case exits 2 (bad input) or 1 (engine), prints one
 * paragraph that names the file / key path and says how to fix it, and builds nothing.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debianImagesYaml, gridforge, tempConfig } from './helpers.ts';

const GOOD = `prefix: gfimgtest
bases:
  debian:
    image: gridforge/base:debian-bookworm
${debianImagesYaml()}`;

const dirs: string[] = [];
function cfg(text: string, files: Record<string, string> = {}): string {
  const c = tempConfig(text, files);
  dirs.push(c.dir);
  return c.file;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The error paragraph: starts with "error: <where>: ..." and contains a fix. */
function expectParagraph(stderr: string, where: string, ...parts: (string | RegExp)[]) {
  const msg = stderr.split('\n').filter((l) => l.startsWith('error:'))[0] ?? '';
  expect(msg, stderr).toContain(`error: ${where}`);
  expect(msg).toMatch(/Fix/);
  for (const p of parts) expect(msg).toMatch(p);
}

describe('bad input: exit 2 (or 1 for the engine) with a message that names the fault and the fix', () => {
  it('the good config renders (baseline for the cases below)', async () => {
    const r = await gridforge(['--config', cfg(GOOD), 'image', 'render', 'vobox-slurm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('FROM gridforge/base:debian-bookworm');
  });

  it('malformed YAML: exit 2, file:line named', async () => {
    const file = cfg(`prefix: gfimgtest\nbases:\n  debian:\n    image: [unclosed\nimages: {}\n`);
    const r = await gridforge(['--config', file, 'image', 'build', 'vobox-slurm']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expectParagraph(r.stderr, `${file}:`, /malformed YAML/, /line|YAML syntax/);
    expect(r.stderr).toMatch(new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+:\\d+`));
  });

  it('unknown key: exit 2, key path and the allowed keys named', async () => {
    const file = cfg(GOOD.replace('    flavour: slurm', '    flavour: slurm\n    flavor: slurm'));
    const r = await gridforge(['--config', file, 'image', 'render', 'vobox-slurm']);
    expect(r.code).toBe(2);
    expectParagraph(r.stderr, file, /images\.vobox-slurm: unknown key 'flavor'/, /expected one of: kind, os, version, variant, labels, flavour, services, uid/);
  });

  it('unknown top-level key and wrong type: exit 2, every problem named', async () => {
    const file = cfg(`${GOOD}registry: x\n`.replace('prefix: gfimgtest', 'prefix: 42'));
    const r = await gridforge(['--config', file, 'image', 'render', 'job']);
    expect(r.code).toBe(2);
    expectParagraph(r.stderr, file, /prefix: expected string, got number/, /\(top level\): unknown key 'registry'/);
  });

  it('unknown service name in the config: exit 2, names images.<name>.services[i] and the valid names', async () => {
    const file = cfg(GOOD.replace('    flavour: slurm', '    flavour: slurm\n    services: [cron, sshd, jalien]'));
    const r = await gridforge(['--config', file, 'image', 'build', 'vobox-slurm']);
    expect(r.code).toBe(2);
    expectParagraph(r.stderr, file, /images\.vobox-slurm\.services\[2\]: 'jalien' is not one of ce, monalisa, batch, cron, rsyslog, proxy-renewal, sshd/);
  });

  it('unknown flavour, and htcondor on a Debian base: exit 2', async () => {
    const a = await gridforge(['--config', cfg(GOOD.replace('flavour: slurm', 'flavour: pbs')), 'image', 'render', 'vobox-slurm']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/images\.vobox-slurm\.flavour: 'pbs' is not one of htcondor, slurm, none/);
    const b = await gridforge(['--config', cfg(GOOD.replace('flavour: slurm', 'flavour: htcondor')), 'image', 'render', 'vobox-slurm']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/images\.vobox-slurm\.flavour: htcondor is built on EL \(dnf\) bases only/);
  });

  it('missing package list: exit 2, names images.job.packages and the path looked at', async () => {
    const file = cfg(GOOD.replace(/packages: .*/, 'packages: images/packages/no-such-list.txt'));
    const r = await gridforge(['--config', file, 'image', 'build', 'job']);
    expect(r.code).toBe(2);
    expectParagraph(r.stderr, file, /images\.job\.packages: package list file 'images\/packages\/no-such-list\.txt' not found/);
    expect(r.stderr).toContain(path.join(path.dirname(file), 'images/packages/no-such-list.txt'));
  });

  it('a bad line in the package list: exit 2, names file:line', async () => {
    const file = cfg(GOOD.replace(/packages: .*/, 'packages: list.txt'), { 'list.txt': '# ok\nbash\nrm -rf /\n' });
    const r = await gridforge(['--config', file, 'image', 'render', 'job']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: list\.txt:3: 'rm -rf \/' is not a package name/);
  });

  it('os that is not a base, unknown image name, missing config file: exit 2', async () => {
    const a = await gridforge(['--config', cfg(GOOD.replace('    os: debian\n    flavour', '    os: el9\n    flavour')), 'image', 'render', 'vobox-slurm']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/images\.vobox-slurm\.os: 'el9' is not a key of bases \(expected one of: debian\)/);
    const b = await gridforge(['--config', cfg(GOOD), 'image', 'build', 'vobox-nope']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/no image named 'vobox-nope'.*Use one of: vobox-slurm, job/);
    const c = await gridforge(['--config', '/nonexistent/gridforge.yaml', 'image', 'render', 'job']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/\/nonexistent\/gridforge\.yaml: cannot read the config file \(ENOENT\).*--config/);
  });

  it('Docker engine not reachable (DOCKER_HOST=unix:///nonexistent): exit 1 with a fix, nothing built', async () => {
    const r = await gridforge(['--config', cfg(GOOD), 'image', 'build', 'vobox-slurm'], { env: { DOCKER_HOST: 'unix:///nonexistent' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expectParagraph(r.stderr, 'docker engine: the Docker engine is not reachable at DOCKER_HOST=unix:///nonexistent', /Start dockerd/, /DOCKER_HOST/);
  });

  it('bad --image-version: exit 2', async () => {
    const r = await gridforge(['--config', cfg(GOOD), 'image', 'build', 'job', '--image-version', 'a b']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--image-version: 'a b' cannot be part of a docker tag/);
  });
});
