/** Shared helpers for the deploy suites: run the CLI, write site files, snapshot a test host. */
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dump } from 'js-yaml';
import type { Lan, TestHost } from '../../support/testhost/index.ts';

export const ROOT = join(import.meta.dirname, '..', '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const t0 = Date.now();
  const r = await execa('node', [join(ROOT, 'scripts/bin/gridforge.mjs'), ...args], { reject: false, cwd: ROOT, env: { GRIDFORGE_QUIET: '0', ...env }, stdin: 'ignore' });
  return { code: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}

/** Build the real VO-box image through the images CLI (docker's cache makes a rebuild fast). */
export async function buildVoboxImage(): Promise<string> {
  const r = await cli(['image', 'build', 'vobox-slurm'], { GRIDFORGE_QUIET: '1' });
  if (r.code !== 0) throw new Error(`gridforge image build vobox-slurm failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1].trim();
}

export interface SiteOpts {
  name?: string;
  ip?: number;
  mac?: string;
  services?: string[];
  image?: string;
  hostKey?: string;
  address?: string;
  nofile?: number;
  extraVobox?: Record<string, unknown>;
  host?: Record<string, unknown>;
  subnet?: string;
}

export function siteDoc(lan: Lan, h: TestHost, image: string, volRoot: string, o: SiteOpts = {}): Record<string, unknown> {
  const name = o.name ?? 'gfdt-vobox';
  return {
    site: 'TEST-GFDT',
    host: {
      address: o.address ?? h.address,
      port: 22,
      user: 'root',
      identityFile: h.identityFile,
      hostKey: o.hostKey ?? h.hostKeyFingerprint,
      connectTimeoutMs: 3000,
      ...o.host,
    },
    vobox: {
      name,
      image: o.image ?? image,
      hostname: 'voboxgfdt.example.org',
      network: { name: 'gfdtnet', parent: 'eth0', subnet: o.subnet ?? lan.subnet, gateway: lan.gateway, ip: `${lan.base}.${o.ip ?? 50}`, mac: o.mac ?? '02:42:0a:01:02:14', dns: [lan.gateway] },
      services: o.services ?? ['cron', 'rsyslog', 'sshd'],
      limits: { nofile: o.nofile ?? 1048576 },
      capabilities: ['NET_ADMIN'],
      cvmfs: { repositories: ['alice.cern.ch'], mount: h.cvmfsDir },
      jalien: { version: '2.1.3-1' },
      volumes: { home: join(volRoot, name, 'home'), gridSecurity: join(volRoot, name, 'grid-security') },
      ...o.extraVobox,
    },
  };
}

export function writeSite(file: string, doc: unknown): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, typeof doc === 'string' ? doc : dump(doc));
  return file;
}

/** What a bad-input run must not change on the host. */
export async function snapshot(h: TestHost): Promise<string> {
  const r = await h.exec(
    "docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.State}} {{.Image}}' | sort; " +
      "docker network ls --no-trunc --format '{{.ID}} {{.Name}} {{.Driver}}' | sort; " +
      'docker images -q --no-trunc | sort; cat /etc/docker/daemon.json; ls -l /etc/security/limits.d; cat /etc/security/limits.d/* 2>/dev/null',
  );
  return r.stdout;
}
