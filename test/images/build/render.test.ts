/**
 * Rendering, both OS families: the build contexts of the example gridforge.yaml's images are
 * compared with golden files (UPDATE_GOLDEN=1 rewrites them), and the rendered pieces are checked
 * with real tools: `bash -n` for every script, Python's configparser (as supervisord reads it) for
 * every supervisord file, program names equal to the service names.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { loadConfig, parseConfig } from '../../../scripts/cli/project-config.ts';
import { SERVICES } from '../../../templates/vobox-contract.ts';
import { renderImage, writeContext } from '../../../images/render.ts';
import { ROOT, gridforge, tempConfig } from './helpers.ts';

const GOLDEN = path.join(ROOT, 'test/images/build/golden');
const IMAGES = ['vobox-slurm', 'vobox-htcondor', 'vobox-slurm-el9', 'job', 'job-el9'];

function goldenFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...goldenFiles(path.join(dir, e.name), rel));
    else out.push(rel);
  }
  return out;
}

describe('render: golden build contexts for Debian (apt) and EL9 (dnf)', () => {
  const config = loadConfig(path.join(ROOT, 'gridforge.yaml'));

  for (const name of IMAGES) {
    it(`${name} matches test/images/build/golden/${name}`, () => {
      const r = renderImage(config, name);
      const dir = path.join(GOLDEN, name);
      const manifest = `${r.files.map((f) => `0${f.mode.toString(8)} ${f.path}`).join('\n')}\ntemplate-hash ${r.templateHash}\n`;
      if (process.env.UPDATE_GOLDEN === '1') {
        rmSync(dir, { recursive: true, force: true });
        for (const f of r.files) {
          const p = path.join(dir, 'context', f.path);
          mkdirSync(path.dirname(p), { recursive: true });
          writeFileSync(p, f.content);
        }
        writeFileSync(path.join(dir, 'MANIFEST'), manifest);
      }
      expect(readFileSync(path.join(dir, 'MANIFEST'), 'utf8')).toBe(manifest);
      expect(goldenFiles(path.join(dir, 'context')).sort()).toEqual(r.files.map((f) => f.path).sort());
      for (const f of r.files) expect(f.content, f.path).toBe(readFileSync(path.join(dir, 'context', f.path), 'utf8'));
    });
  }

  it('uses apt for Debian and dnf (+EPEL, +HTCondor repository) for EL9', () => {
    const deb = renderImage(config, 'vobox-slurm').dockerfile;
    expect(deb).toMatch(/^FROM gridforge\/base:debian-bookworm$/m);
    expect(deb).toContain('apt-get install -y -q --no-install-recommends');
    expect(deb).toContain('rm -rf /var/lib/apt/lists/*');
    expect(deb).toMatch(/^\s+slurm-client \\$/m);
    expect(deb).not.toContain('dnf');
    const el = renderImage(config, 'vobox-htcondor').dockerfile;
    expect(el).toMatch(/^FROM almalinux:9$/m);
    expect(el).toContain('dnf -y install epel-release');
    expect(el).toContain('htcondor-release-current.el9.noarch.rpm');
    expect(el).toMatch(/^\s+condor \\$/m);
    expect(el).not.toContain('apt-get');
    const job = renderImage(config, 'job').dockerfile;
    expect(job).toMatch(/^\s+openjdk-17-jre-headless \\$/m);
    expect(job).toContain('install -d -m 0755 /cvmfs /workdir /srv');
    expect(job).toContain('java -version && ps --version');
    expect(renderImage(config, 'job-el9').dockerfile).toMatch(/^\s+java-17-openjdk-headless \\$/m);
  });

  it('rendered scripts pass bash -n and supervisord files parse with one [program:<service>] each', async () => {
    for (const name of ['vobox-slurm', 'vobox-htcondor']) {
      const r = renderImage(config, name);
      for (const f of r.files.filter((x) => x.mode === 0o755)) {
        const check = await execa('bash', ['-n'], { input: f.content, reject: false });
        expect(check.exitCode, `${name} ${f.path}: ${check.stderr}`).toBe(0);
      }
      const programs = r.files.filter((f) => f.path.startsWith('rootfs/etc/gridforge/services/'));
      expect(programs.map((f) => path.basename(f.path, '.conf')).sort()).toEqual([...SERVICES].sort());
      const py = `
import configparser, json, sys
out = {}
for path in sys.argv[1:]:
    c = configparser.RawConfigParser(inline_comment_prefixes=(';',))
    c.read_string(open(path).read())
    out[path] = {s: dict(c.items(s)) for s in c.sections()}
print(json.dumps(out))`;
      const dir = path.join(ROOT, `.gridforge/test-render-${process.pid}-${name}`);
      rmSync(dir, { recursive: true, force: true });
      try {
        await writeContext(r, dir);
        const files = [...programs.map((f) => path.join(dir, f.path)), path.join(dir, 'rootfs/etc/supervisord.conf')];
        const parsed = JSON.parse((await execa('python3', ['-c', py, ...files])).stdout);
        for (const f of programs) {
          const service = path.basename(f.path, '.conf');
          const sections = parsed[path.join(dir, f.path)];
          expect(Object.keys(sections)).toEqual([`program:${service}`]);
          const p = sections[`program:${service}`];
          expect(p.autorestart).toBe('true');
          expect(p.stdout_logfile).toBe(`/var/log/gridforge/${service}.log`);
          expect(p.stdout_logfile_maxbytes).toBe('10MB');
          expect(Number(p.stdout_logfile_backups)).toBeGreaterThan(0);
          expect(p.command).toBeTruthy();
        }
        const sup = parsed[path.join(dir, 'rootfs/etc/supervisord.conf')];
        expect(sup.supervisord.nodaemon).toBe('true');
        expect(sup.include.files).toBe('/etc/gridforge/enabled/*.conf');
        // Modes come from the renderer, not from the checkout.
        expect(statSync(path.join(dir, 'rootfs/usr/local/bin/systemctl')).mode & 0o777).toBe(0o755);
        expect(statSync(path.join(dir, 'rootfs/etc/supervisord.conf')).mode & 0o777).toBe(0o644);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      if (name === 'vobox-slurm') expect(r.files.find((f) => f.path.endsWith('batch.conf'))!.content).toContain('munged');
      else expect(r.files.find((f) => f.path.endsWith('gridforge-batch-start'))!.content).toContain('condor_master -f');
    }
  });

  it('flavour none and a services subset leave the other programs out; the hash follows the content', () => {
    const cfg = parseConfig(
      {
        prefix: 'gfimgtest',
        bases: { debian: { image: 'gridforge/base:debian-bookworm' } },
        images: {
          plain: { kind: 'vobox', os: 'debian', flavour: 'none' },
          small: { kind: 'vobox', os: 'debian', flavour: 'slurm', services: ['cron', 'sshd'] },
        },
      },
      path.join(ROOT, 'virtual.yaml'),
    );
    const plain = renderImage(cfg, 'plain');
    expect(plain.files.some((f) => f.path.includes('batch'))).toBe(false);
    expect(plain.files.some((f) => f.path.endsWith('services/ce.conf'))).toBe(true);
    expect(plain.dockerfile).not.toMatch(/munge|slurm-client|condor/);
    const small = renderImage(cfg, 'small');
    expect(small.files.filter((f) => f.path.startsWith('rootfs/etc/gridforge/services/')).map((f) => path.basename(f.path)).sort()).toEqual(['cron.conf', 'sshd.conf']);
    expect(small.files.some((f) => f.path.endsWith('gridforge-ce-start'))).toBe(false);
    expect(small.templateHash).not.toBe(plain.templateHash);
    expect(renderImage(cfg, 'small').templateHash).toBe(small.templateHash);
  });

  it('`gridforge image render` prints the Dockerfile; --context writes the build context; --json the record', async () => {
    const r = await gridforge(['image', 'render', 'vobox-slurm']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(renderImage(config, 'vobox-slurm').dockerfile.trimEnd());
    const { dir } = tempConfig('x: 1\n');
    const out = path.join(dir, 'ctx');
    const j = await gridforge(['image', 'render', 'job', '--json', '--context', out]);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout);
    expect(doc.templateHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(existsSync(path.join(out, 'Dockerfile'))).toBe(true);
    expect(readFileSync(path.join(out, 'Dockerfile'), 'utf8')).toBe(doc.dockerfile);
    const again = await gridforge(['image', 'render', 'job', '--context', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('not empty');
    rmSync(dir, { recursive: true, force: true });
  });
});
