/**
 * The testbed's site file (`<testbed dir>/site.yaml`, the shape of sites/example.yaml, validated by
 * stacks/spec.ts): what `gridforge render jobagent-startup` reads to render the script the CE submits,
 * and what describes the VO-box of the testbed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { loadSiteSpec, type SiteSpec } from '../stacks/index.ts';
import type { TestbedState } from './state.ts';

export function siteFilePath(state: TestbedState): string {
  return join(state.dir, 'site.yaml');
}

/** The VO-box host's SSH host key (made once) and its SHA256 fingerprint, for the site file's pin. */
export function hostKeyPin(dir: string): string {
  const key = join(dir, 'ssh_host_ed25519_key');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gridforge-testbed', '-f', key]);
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key}.pub`], { encoding: 'utf8' }).split(/\s+/)[1];
}

export const voboxHostname = (prefix: string) => `vobox.${prefix}.testbed.local`;

export interface SiteFileInputs { repoName: string; image: string; identityFile?: string }

export function writeSiteFile(state: TestbedState, o: SiteFileInputs): SiteSpec {
  const repoName = o.repoName;
  const vobox = state.hosts.find((h) => h.role === 'vobox');
  const base = state.gateway?.replace(/\.1$/, '') ?? '10.0.0';
  const doc = {
    site: `TESTBED-${state.prefix.toUpperCase()}`,
    host: { address: vobox?.address ?? `${base}.5`, port: 22, user: 'root', hostKey: hostKeyPin(join(state.dir, 'vobox')), ...(o.identityFile ? { identityFile: o.identityFile } : {}) },
    vobox: {
      name: `${state.prefix}-vobox`,
      image: o.image,
      hostname: voboxHostname(state.prefix),
      network: { name: `${state.prefix}net`, parent: 'eth0', subnet: state.subnet, gateway: state.gateway, ip: `${base}.50`, mac: '02:42:0a:01:02:32', dns: [state.gateway] },
      // batch = munged for the Slurm client; the CE's submitter runs in the container (testbed/batch-queue.ts)
      // instead of JAliEn's ComputingElement, which needs central services (testbed/README.md).
      services: ['batch', 'cron', 'rsyslog'],
      capabilities: ['NET_ADMIN'],
      cvmfs: { repositories: [repoName], mount: '/cvmfs' },
      volumes: { home: join(state.dir, 'vobox', 'home'), gridSecurity: join(state.dir, 'vobox', 'grid-security') },
      // The VO-box's Slurm client from the site's own files (sites/README.md "Batch client").
      batch: { slurm: { mungeKey: state.slurm!.mungeKey, conf: state.slurm!.conf } },
    },
    // `testbed up --elastic N`: the elastic pool (testbed/elastic.ts, elastic/pool.ts)
    ...(state.elastic ? { elastic: state.elastic } : {}),
  };
  const file = siteFilePath(state);
  writeFileSync(file, `# site file of the gridforge testbed (testbed/site-file.ts)\n${dump(doc)}`);
  return loadSiteSpec(file, { checkSiblings: false });
}
