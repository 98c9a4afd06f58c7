/**
 * Image archives of a deploy (stacks/deploy-image.ts, read through images/archive/image-identity.ts):
 * the image ID read from a docker-save archive (plain tar indexed in place, gzip through a spool)
 * equals what the Docker engine reports for the image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveImageInfo } from '../../../stacks/deploy-image.ts';

const IMAGE = 'gridforge/base:debian-bookworm';
let dir: string;
let id: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gfdi-'));
  id = (await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', IMAGE])).stdout.trim();
  await execa('docker', ['save', IMAGE, '-o', join(dir, 'img.tar')]);
  await execa('sh', ['-c', `gzip -1 -c ${join(dir, 'img.tar')} > ${join(dir, 'img.tar.gz')}`]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('archive image info', () => {
  it('reads the image ID of a plain docker-save archive without reading layer data', async () => {
    const info = await archiveImageInfo(join(dir, 'img.tar'));
    expect(info.id).toBe(id);
    expect(info.repoTags).toContain(IMAGE);
  });

  it('reads the same from a gzip archive, and leaves no spool behind', async () => {
    const spools = () => readdirSync(tmpdir()).filter((n) => n.startsWith('gridforge-identity-')).sort();
    const before = spools();
    expect((await archiveImageInfo(join(dir, 'img.tar.gz'))).id).toBe(id);
    expect(spools()).toEqual(before);
  });

  it('finds the manifest behind GNU long names and big entries (GNU tar, PAX tar)', async () => {
    const src = join(dir, 'src');
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    mkdirSync(join(src, 'd'.repeat(120)), { recursive: true });
    writeFileSync(join(src, long), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const hex = createHash('sha256').update(config).digest('hex');
    mkdirSync(join(src, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(src, 'blobs', 'sha256', hex), config);
    writeFileSync(join(src, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${hex}`, RepoTags: ['x:y'], Layers: [] }]));
    for (const fmt of ['gnu', 'pax']) {
      const out = join(dir, `${fmt}.tar`);
      await execa('tar', ['-C', src, `--format=${fmt}`, '-cf', out, 'd'.repeat(120), 'blobs', 'manifest.json']);
      expect(await archiveImageInfo(out)).toEqual({ id: `sha256:${hex}`, repoTags: ['x:y'] });
    }
  });

  it('refuses a tar that is not an image archive', async () => {
    const src = join(dir, 'plain');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'hello'), 'x');
    await execa('tar', ['-C', src, '-cf', join(dir, 'plain.tar'), 'hello']);
    await expect(archiveImageInfo(join(dir, 'plain.tar'))).rejects.toThrow(/manifest\.json/);
  });
});
