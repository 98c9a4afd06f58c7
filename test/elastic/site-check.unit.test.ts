/**
 * `gridforge site check` refuses an elastic pool that cannot work (exit 2, the key and the fix)
 * before it tries the site host: a pool error is bad input in the site file, whatever the host's
 * state (here the host has no SSH credentials, which the preflight would report first).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../scripts/cli/main.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-elastic-check-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function siteFile(maxNodes: number): string {
  // one directory per file: site files beside each other are checked against each other (names per host)
  fs.mkdirSync(path.join(dir, String(maxNodes)));
  const file = path.join(dir, String(maxNodes), 'site.yaml');
  fs.writeFileSync(file, `site: TEST-EL
host:
  address: 127.0.0.1
  port: 1
  hostKey: SHA256:${'A'.repeat(43)}
vobox:
  name: vb
  image: gridforge/vobox-slurm:x
  hostname: vobox.example.org
  network: { name: gfnet, parent: eth0, subnet: 10.1.2.0/24, gateway: 10.1.2.1, ip: 10.1.2.50, mac: '02:42:0a:01:02:32' }
  volumes: { home: /srv/home, gridSecurity: /srv/gs }
  services: [batch]
  cvmfs: {}
elastic:
  image: gridforge/worker-node:debian-slurm-0.1.0
  maxNodes: ${maxNodes}
  network: { addresses: 10.1.2.60-10.1.2.62 }
  controller: 10.1.2.10:6817
  mungeKey: /etc/munge/munge.key
`);
  return file;
}

async function check(file: string): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const code = await main(['node', 'gridforge', 'site', 'check', file]);
  return { code, err: err.join('') };
}

describe('site check with an elastic pool', () => {
  it('a pool with more nodes than addresses: exit 2 naming elastic.maxNodes and the fix, before the host is tried', async () => {
    const r = await check(siteFile(5));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/elastic\.maxNodes/);
    expect(r.err).toMatch(/maxNodes 5 is more than the 3 addresses/);
    expect(r.err).toMatch(/Fix: .*lower elastic\.maxNodes to 3/);
  });

  it('a pool that can work goes on to the host preflight (here it stops at the missing SSH credentials)', async () => {
    const r = await check(siteFile(3));
    expect(r.err).toMatch(/host\.identityFile/);
    expect(r.err).not.toMatch(/elastic\./);
  }, 60_000);
});
