/**
 * `testbed up`: a local ALICE site on this machine. Order: site LAN (bridge) -> hosts (controller,
 * worker nodes, the VO-box host) -> munge + Slurm -> the repository served and mounted on every
 * worker node. Each thing is written to the state file before it is made (testbed/state.ts), so
 * `testbed down` removes it even when `up` crashes half way; a failing `up` removes it itself.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { destroyTestbed } from './down.ts';
import { createBridge, pickSubnet, startHost } from './nshost.ts';
import { checkoutRevision, findCvmfs2, mountCheckout, mountCvmfs2, repoInfo, startServe } from './repo-mount.ts';
import { PARTITION, renderSlurmConf, startMunged, startSlurmctld, startSlurmd, waitNodesUp, writeMungeKey } from './slurm.ts';
import { DEFAULT_PREFIX, readState, saveState, testbedDir, type HostRecord, type TestbedState } from './state.ts';
import { isAlive } from './status.ts';
import { hostKeyPin, voboxHostname, writeSiteFile } from './site-file.ts';
import { dockerHostBoot } from './docker-host.ts';
import { checkImage, deployVobox } from './vobox.ts';
import { elasticBlock, elasticPrepare, elasticSlurm, type ElasticUpOptions } from './elastic.ts';

export interface UpOptions {
  workers?: number;
  repo: string;
  tag?: string;
  prefix?: string;
  /** the VO-box image to deploy with the site deploy engine; false: the CE submitter runs in the bare VO-box host (faster; tests of the worker side) */
  voboxImage?: string | false;
  /** an elastic site (testbed/elastic.ts): cloud nodes on the VO-box host instead of (or beside) static workers */
  elastic?: ElasticUpOptions;
  onProgress?: (line: string) => void;
}

export const DEFAULT_VOBOX_IMAGE = 'gridforge/vobox-slurm:debian-slurm-0.1.0';

export interface UpResult { state: TestbedState; seconds: number; cvmfs: string }

function validate(o: UpOptions): { workers: number; prefix: string } {
  const workers = o.workers ?? (o.elastic ? 0 : 2);
  if (!Number.isInteger(workers) || workers < (o.elastic ? 0 : 1) || workers > 8) throw new UsageError(`--workers ${o.workers} is not 1..8`, { where: '--workers', hint: 'use e.g. --workers 2' });
  const prefix = o.prefix ?? process.env.GRIDFORGE_TESTBED_PREFIX ?? DEFAULT_PREFIX;
  if (!/^[a-z][a-z0-9]{1,5}$/.test(prefix)) throw new UsageError(`testbed prefix "${prefix}" must be 2-6 lowercase letters/digits`, { where: 'GRIDFORGE_TESTBED_PREFIX' });
  if (o.elastic && (!Number.isInteger(o.elastic.maxNodes) || o.elastic.maxNodes < 1 || o.elastic.maxNodes > 10)) throw new UsageError(`--elastic ${o.elastic.maxNodes} is not 1..10`, { where: '--elastic', hint: 'e.g. --elastic 3' });
  if (o.elastic && o.voboxImage === false) throw new UsageError('an elastic testbed needs the VO-box host\'s Docker engine (the VO-box deployed)', { where: '--elastic' });
  if (o.tag !== undefined && !/^[A-Za-z0-9._+-]+$/.test(o.tag)) throw new UsageError(`tag "${o.tag}" is not a tag name`, { where: '--tag' });
  return { workers, prefix };
}

export async function testbedUp(o: UpOptions): Promise<UpResult> {
  const t0 = Date.now();
  const { workers, prefix } = validate(o);
  const repo = repoInfo(o.repo); // bad --repo: UsageError, nothing made
  const image = o.voboxImage === false ? undefined : o.voboxImage ?? DEFAULT_VOBOX_IMAGE;
  if (image) await checkImage(image);
  const dir = testbedDir(prefix);
  const old = readState(dir);
  if (old && old.phase === 'up' && isAlive(old)) {
    throw new UsageError(`a testbed (${prefix}) is already up (state ${dir}/state.json)`, { hint: 'run `gridforge testbed down` first' });
  }
  if (old) await destroyTestbed(prefix);
  const say = o.onProgress ?? (() => {});
  const state: TestbedState = { prefix, dir, phase: 'starting', hosts: [], startedAt: new Date().toISOString() };
  saveState(state);
  try {
    await build(state, workers, repo, o.tag, say, image, o.elastic);
    state.phase = 'up';
    saveState(state);
    return { state, seconds: (Date.now() - t0) / 1000, cvmfs: state.repo?.mode ?? 'checkout' };
  } catch (err) {
    state.phase = 'failed';
    state.error = String((err as Error).message ?? err);
    saveState(state);
    await destroyTestbed(prefix).catch(() => {});
    throw err;
  }
}

async function build(state: TestbedState, workers: number, repo: ReturnType<typeof repoInfo>, tag: string | undefined, say: (l: string) => void, image?: string, elastic?: ElasticUpOptions): Promise<void> {
  const { prefix, dir } = state;
  if (!existsSync('/cvmfs')) {
    state.createdCvmfsDir = true;
    saveState(state);
    mkdirSync('/cvmfs');
  }
  const base = await pickSubnet(prefix);
  state.bridge = `${prefix}br`;
  state.subnet = `${base}.0/24`;
  state.gateway = `${base}.1`;
  saveState(state);
  say(`site LAN ${state.subnet} on bridge ${state.bridge}`);
  await createBridge(state.bridge, state.gateway);

  const plan: HostRecord[] = [
    { name: 'ctl', role: 'controller', netns: `${prefix}-ctl`, veth: `${prefix}h0`, address: `${base}.10` },
    { name: 'vobox', role: 'vobox', netns: `${prefix}-vobox`, veth: `${prefix}h1`, address: `${base}.5` },
    ...Array.from({ length: workers }, (_, i): HostRecord => ({ name: `wn${i + 1}`, role: 'worker', netns: `${prefix}-wn${i + 1}`, veth: `${prefix}h${i + 2}`, address: `${base}.${21 + i}` })),
  ];
  // The site's name service: every host's /etc/hosts names the others (a real site has DNS).
  const hostsFile = join(dir, 'hosts');
  // The VO-box container's name too: slurmctld resolves the host a job is submitted from.
  writeFileSync(hostsFile, ['127.0.0.1 localhost', `${state.gateway} gateway`, ...plan.map((h) => `${h.address} ${h.name}`), `${base}.50 ${voboxHostname(prefix)}`, ''].join('\n'));
  for (const h of plan) {
    state.hosts.push(h);
    saveState(state);
    mkdirSync(join(dir, h.name, 'run', 'jobs'), { recursive: true });
    const root = join(dir, h.name);
    const boot = [`mount --bind ${hostsFile} /etc/hosts`, ...(h.role === 'vobox' && image ? dockerHostBoot(root) : [])];
    h.holderPid = await startHost(h, { root, bridge: state.bridge, gateway: state.gateway, boot });
    saveState(state);
  }
  say(`hosts: ${plan.map((h) => `${h.name} ${h.address}`).join(', ')}`);

  const conf = join(dir, 'slurm.conf');
  const mungeKey = join(dir, 'munge.key');
  mkdirSync(join(dir, 'controller', 'state'), { recursive: true });
  const ctl = plan[0];
  const nodes = plan.filter((h) => h.role === 'worker');
  state.slurm = { conf, mungeKey, cluster: prefix, partition: PARTITION };
  if (elastic) state.elastic = elasticBlock(state, elastic);
  saveState(state);
  const cloud = elastic ? elasticSlurm(state, repo.name, image ?? DEFAULT_VOBOX_IMAGE) : undefined;
  writeFileSync(conf, renderSlurmConf({ cluster: prefix, controller: ctl, nodes: nodes.map((n) => ({ name: n.name, address: n.address, cpus: 2 })), dir, cloud }));
  writeMungeKey(mungeKey);
  await Promise.all(plan.map((h) => startMunged(h, join(dir, h.name), mungeKey)));
  await startSlurmctld(ctl, conf);
  await Promise.all(nodes.map((n) => startSlurmd(n, conf)));
  say(`Slurm: slurmctld on ${ctl.name}, slurmd on ${nodes.map((n) => n.name).join(', ')}, munge key ${mungeKey}`);

  state.repo = { dir: repo.dir, name: repo.name, tag, publicKey: repo.publicKey };
  saveState(state);
  const served = await startServe(repo, state.gateway, `${prefix}-serve`, join(dir, 'serve.log'));
  state.repo.url = served.url;
  state.repo.servePid = served.pid;
  saveState(state);
  say(`repository ${repo.name} served at ${served.url} (gridforge repo serve)`);
  const cvmfs2 = findCvmfs2();
  if (cvmfs2) {
    state.repo.mode = 'cvmfs2';
    await Promise.all(nodes.map((n) => mountCvmfs2(n, cvmfs2, served.url, repo, join(dir, n.name), tag)));
    say(`mounted /cvmfs/${repo.name} on ${nodes.length} worker node(s) with the stock cvmfs client ${cvmfs2}${tag ? ` (tag ${tag})` : ''}`);
  } else {
    state.repo.mode = 'checkout';
    const co = join(dir, 'checkout', repo.name);
    state.repo.checkout = co;
    saveState(state);
    await checkoutRevision(served.url, repo, co, tag);
    await Promise.all(nodes.map((n) => mountCheckout(n, co, repo.name)));
    say(`mounted /cvmfs/${repo.name} on ${nodes.length} worker node(s) as a read-only checkout of ${tag ? `tag ${tag}` : 'the newest revision'} (no stock cvmfs client on this machine)`);
  }
  await waitNodesUp(ctl, conf, nodes.map((n) => n.name), 60_000);
  const voboxHost = plan[1];
  hostKeyPin(join(dir, voboxHost.name));
  if (image) await deployVobox(state, voboxHost, image, say);
  if (elastic) say(`elastic: ${(await elasticPrepare(state)).join('; ') || 'ready'}; cloud nodes ${cloud!.nodes} (gridforge elastic status --site ${join(dir, 'site.yaml')})`);
  else {
    writeSiteFile(state, { repoName: repo.name, image: DEFAULT_VOBOX_IMAGE });
    say('VO-box: not deployed (the CE submitter runs in the VO-box host with the site slurm.conf and munge key)');
  }
  if (!ctl.holderPid) throw new GridforgeError('testbed: controller has no holder');
}
