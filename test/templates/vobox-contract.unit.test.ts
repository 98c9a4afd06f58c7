/**
 * The job bind points are defined once (templates/vobox-contract.ts): the sandbox writer
 * pre-creates all of them, the job image config starts from the same list, and the job
 * Dockerfile creates only those an OS base does not already have (never re-moding /tmp).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BIND_POINTS } from '../../images/sandbox/index.ts';
import { renderImage } from '../../images/render.ts';
import { parseConfig } from '../../scripts/cli/project-config.ts';
import { SERVICES as SITE_SERVICES } from '../../stacks/spec.ts';
import { JOB_BIND_POINTS, OS_BIND_POINTS, SERVICES } from '../../templates/vobox-contract.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('templates/vobox-contract.ts', () => {
  it('one list of services and one of bind points, shared by the site spec and the sandbox writer', () => {
    expect(SITE_SERVICES).toBe(SERVICES);
    expect(DEFAULT_BIND_POINTS).toBe(JOB_BIND_POINTS);
    for (const p of ['/cvmfs', '/workdir', '/srv', '/etc/localtime']) expect(JOB_BIND_POINTS).toContain(p);
  });

  it('the job image gets every bind point plus extras; its Dockerfile creates only the non-OS ones', () => {
    const cfg = parseConfig(
      {
        prefix: 'gfimgtest',
        bases: { debian: { image: 'gridforge/base:debian-bookworm' } },
        images: { job: { kind: 'job', os: 'debian', packages: 'images/packages/job-debian.txt', bindPoints: ['/tmp', '/data/site'] } },
      },
      path.join(ROOT, 'virtual.yaml'),
    );
    const img = cfg.images.job;
    expect(img.kind === 'job' && img.bindPoints).toEqual([...JOB_BIND_POINTS, '/data/site']);
    const dockerfile = renderImage(cfg, 'job').dockerfile;
    expect(dockerfile).toContain('RUN install -d -m 0755 /cvmfs /workdir /srv /data/site \\');
    for (const p of OS_BIND_POINTS) expect(dockerfile).not.toMatch(new RegExp(`install -d[^\\n]* ${p}( |$)`, 'm'));
  });
});
