/**
 * `bash scripts/setup.sh` against broken package sources (as root, on this machine's apt): an
 * unreachable source and a mirror mid-sync (a local HTTP mirror whose Release promises a Packages
 * index of another size: apt's "File has unexpected size ... Mirror sync in progress?") only warn,
 * and setup finishes (and builds .build/, scripts/build.mjs); a package that cannot be installed
 * stops setup with exit 1 and is named. The extra source file is removed afterwards, even on failure.
 * Hooks used: GRIDFORGE_SETUP_FORCE_UPDATE, GRIDFORGE_SETUP_EXTRA_PACKAGES, GRIDFORGE_SETUP_RETRY_DELAY.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE = '/etc/apt/sources.list.d/gridforge-test-unreachable.list';
const WARNING = 'setup: warning: apt-get update reported errors; going on with the package lists it could read:';

// apt's own retries (Acquire::Retries, 3 with back-off in bookworm) only make a refused connection
// slower: off for these runs through APT_CONFIG, read in addition to /etc/apt/apt.conf.d/.
const APT_CONFIG = path.join(os.tmpdir(), `gridforge-setup-test-${process.pid}.conf`);
beforeAll(() => fs.writeFileSync(APT_CONFIG, 'Acquire::Retries "0";\n'));
afterAll(() => fs.rmSync(APT_CONFIG, { force: true }));

const setup = (env: Record<string, string>) =>
  execa('bash', [path.join(ROOT, 'scripts/setup.sh')], { cwd: ROOT, reject: false, env: { GRIDFORGE_SETUP_RETRY_DELAY: '0', APT_CONFIG, ...env } });

/** Runs `body` with `line` as an extra apt source; the file goes away whatever happens. */
async function withSource<T>(line: string, body: () => Promise<T>): Promise<T> {
  fs.writeFileSync(SOURCE, `# written by gridforge test/scripts/setup-mirror.test.ts; safe to delete\n${line}\n`);
  try {
    return await body();
  } finally {
    fs.rmSync(SOURCE, { force: true });
  }
}

/** A Debian mirror caught mid-sync: its Release lists a Packages index 100 bytes longer than served. */
async function midSyncMirror(): Promise<{ port: number; close: () => Promise<void> }> {
  const packages = Buffer.from('Package: gridforge-mid-sync\nVersion: 1\nArchitecture: amd64\n\n');
  const promised = Buffer.concat([packages, Buffer.alloc(100, 0x0a)]);
  const release = [
    'Origin: gridforge-test', 'Label: gridforge-test', 'Suite: gridforge-test', 'Codename: gridforge-test',
    `Date: ${new Date().toUTCString()}`, 'Architectures: amd64', 'Components: main', 'SHA256:',
    ` ${crypto.createHash('sha256').update(promised).digest('hex')} ${promised.length} main/binary-amd64/Packages`, '',
  ].join('\n');
  const server = http.createServer((req, res) => {
    const body = req.url === '/debian/dists/gridforge-test/Release' ? release
      : req.url === '/debian/dists/gridforge-test/main/binary-amd64/Packages' ? packages : undefined;
    res.writeHead(body === undefined ? 404 : 200).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('setup with broken package sources', () => {
  it('an unreachable source is a warning; setup finishes and builds the CLI', async () => {
    const r = await withSource('deb http://127.0.0.1:9/debian bookworm main', () => setup({ GRIDFORGE_SETUP_FORCE_UPDATE: '1' }));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(WARNING);
    expect(r.stderr).toMatch(/^setup: {3}W: Failed to fetch http:\/\/127\.0\.0\.1:9\/debian/m);
    expect(r.stderr).toMatch(/^build: /m);
    expect(r.stderr).toMatch(/^setup: ready$/m);
    expect(fs.existsSync(SOURCE)).toBe(false);
  });

  it('a mirror mid-sync is a warning naming the index; setup finishes', async () => {
    const mirror = await midSyncMirror();
    try {
      const r = await withSource(`deb [trusted=yes arch=amd64] http://127.0.0.1:${mirror.port}/debian gridforge-test main`,
        () => setup({ GRIDFORGE_SETUP_FORCE_UPDATE: '1' }));
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain(WARNING);
      expect(r.stderr).toContain(`http://127.0.0.1:${mirror.port}/debian/dists/gridforge-test/main/binary-amd64/Packages`);
      expect(r.stderr).toMatch(/^setup: ready$/m);
    } finally {
      await mirror.close();
    }
  });

  it('a package that cannot be installed stops setup with exit 1 and is named', async () => {
    const r = await setup({ GRIDFORGE_SETUP_EXTRA_PACKAGES: 'gridforge-no-such-package' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("setup: cannot install Debian package 'gridforge-no-such-package':");
    expect(r.stderr).toContain('Unable to locate package gridforge-no-such-package');
    expect(r.stderr).toContain('setup: failed: gridforge-no-such-package could not be installed');
    expect(r.stderr).not.toMatch(/^setup: ready$/m);
  });
});
