/**
 * The elastic worker-node image, built from templates/worker-node/ like the other images are from
 * templates/ (one renderer, templates/render.ts): the offline Debian base + munge + slurmd, and the
 * start script that runs munged and configless slurmd. `gridforge elastic image` builds it into the
 * local engine; the docker-ssh provider streams it to its hosts when they lack it.
 */
import { mkdtempSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { GridforgeError } from '../base/errors.ts';
import { renderTemplate, TEMPLATES_DIR } from '../templates/render.ts';

export const WORKER_NODE_IMAGE = 'gridforge/worker-node:debian-slurm-0.1.0';
export const WORKER_NODE_BASE = 'gridforge/base:debian-bookworm';
export const WORKER_NODE_PACKAGES = ['munge', 'slurmd', 'slurm-client', 'procps', 'ca-certificates', 'iproute2'];

export function renderWorkerNodeDockerfile(o: { name?: string; base?: string } = {}): string {
  return renderTemplate('worker-node/Dockerfile.hbs', { name: o.name ?? WORKER_NODE_IMAGE, base: o.base ?? WORKER_NODE_BASE, packages: WORKER_NODE_PACKAGES });
}

/** docker build of the worker-node image in the local engine; returns the reference. */
export async function buildWorkerNodeImage(o: { tag?: string; base?: string; onProgress?: (l: string) => void } = {}): Promise<string> {
  const tag = o.tag ?? WORKER_NODE_IMAGE;
  const ctx = mkdtempSync(join(tmpdir(), 'gf-wn-'));
  try {
    writeFileSync(join(ctx, 'Dockerfile'), renderWorkerNodeDockerfile({ name: tag, base: o.base }));
    copyFileSync(join(TEMPLATES_DIR, 'worker-node', 'gridforge-wn-start'), join(ctx, 'gridforge-wn-start'));
    const r = await execa('docker', ['build', '-q', '-t', tag, ctx], { reject: false });
    if (r.exitCode !== 0) throw new GridforgeError(`worker-node image build failed: ${String(r.stderr).slice(-1500)}`, { hint: `is ${o.base ?? WORKER_NODE_BASE} in the engine? (bash scripts/base-image.sh)` });
    o.onProgress?.(`built ${tag}`);
    return tag;
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}
