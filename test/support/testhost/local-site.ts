/**
 * A local test host for the demo and for trying `gridforge site ...` by hand:
 *
 *   node --import tsx test/support/testhost/local-site.ts up [--prefix gfdemo] [--image <ref>] [--out /tmp/gridforge-testhost/<prefix>-site.yaml]
 *       creates a test LAN + test host + LAN client, writes a site file for it and prints its path
 *       (stdout, last line); then: gridforge site deploy <that file> --yes
 *   node --import tsx test/support/testhost/local-site.ts ping [--prefix gfdemo] <ip>
 *       from the LAN client: ping the VO-box and print the neighbour entry (IP and MAC)
 *   node --import tsx test/support/testhost/local-site.ts down [--prefix gfdemo]
 *       removes everything (processes, namespaces, bridge, iptables rule, files)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { dump } from 'js-yaml';
import { execa } from 'execa';
import { cleanupStale, createLan, createTestHost } from './index.ts';

function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}

async function main(): Promise<number> {
  const cmd = process.argv[2];
  const prefix = opt('prefix', 'gfdemo');
  if (cmd === 'down') {
    await cleanupStale(prefix);
    rmSync(resolve(opt('out', `/tmp/gridforge-testhost/${prefix}-site.yaml`)), { force: true });
    return 0;
  }
  if (cmd === 'ping') {
    const ip = process.argv[process.argv.length - 1];
    const r = await execa('sh', ['-c', `ip netns exec ${prefix}-c-client sh -c 'ping -c 2 -W 2 ${ip} >/dev/null; ip neigh show ${ip}'`], { reject: false });
    process.stdout.write(`${r.stdout}\n`);
    return /lladdr/.test(r.stdout) ? 0 : 1;
  }
  if (cmd !== 'up') {
    process.stderr.write('usage: local-site.ts up|ping|down [--prefix p] [--image ref] [--out file]\n');
    return 2;
  }
  const image = opt('image', 'gridforge/vobox-slurm:debian-slurm-0.1.0');
  const out = resolve(opt('out', `/tmp/gridforge-testhost/${prefix}-site.yaml`));
  await cleanupStale(prefix);
  const lan = await createLan(prefix);
  const host = await createTestHost(lan, { name: 'host' });
  await lan.addClient('client');
  mkdirSync(`${host.cvmfsDir}/alice.cern.ch`, { recursive: true });
  writeFileSync(`${host.cvmfsDir}/alice.cern.ch/.gridforge-local-test`, 'local test host: replace with a repository checkout\n');
  const doc = {
    site: 'LOCAL-TEST',
    host: { address: host.address, port: 22, user: 'root', identityFile: host.identityFile, hostKey: host.hostKeyFingerprint },
    vobox: {
      name: `${prefix}-vobox`,
      image,
      hostname: 'voboxlocal.example.org',
      network: { name: `${prefix}net`, parent: 'eth0', subnet: lan.subnet, gateway: lan.gateway, ip: `${lan.base}.50`, mac: '02:42:0a:01:02:32', dns: [lan.gateway] },
      services: ['cron', 'rsyslog', 'sshd'],
      limits: { nofile: 1048576 },
      capabilities: ['NET_ADMIN'],
      cvmfs: { repositories: ['alice.cern.ch'], mount: host.cvmfsDir },
      volumes: { home: `${host.root}/vol/home`, gridSecurity: `${host.root}/vol/grid-security` },
    },
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `# local test host made by test/support/testhost/local-site.ts (remove with: ... local-site.ts down --prefix ${prefix})\n${dump(doc)}`);
  process.stderr.write(`test host ${host.address} (ssh root@${host.address} -i ${host.identityFile}), LAN ${lan.subnet}, VO-box will be ${lan.base}.50\n`);
  process.stdout.write(`${out}\n`);
  return 0;
}

process.exitCode = await main();
