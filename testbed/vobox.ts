/**
 * The testbed's VO-box: the `vobox-slurm` image deployed to the VO-box host with the deploy engine
 * of `gridforge site deploy` (stacks/deploy.ts) from the testbed's site file, whose
 * `vobox.batch.slurm` gives the VO-box's Slurm client the site's slurm.conf and munge key. The
 * CE's submitter then runs inside that container (`docker exec`), against the site's controller.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { shellQuote } from '../base/shell-quote.ts';
import { deploySite } from '../stacks/index.ts';
import { startDockerHost } from './docker-host.ts';
import { hostExec, sleep, type ExecResult } from './nshost.ts';
import { mountCheckout } from './repo-mount.ts';
import { hostKeyPin, writeSiteFile } from './site-file.ts';
import { saveState, type HostRecord, type TestbedState } from './state.ts';

export async function checkImage(image: string): Promise<void> {
  const r = await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { reject: false });
  if (r.exitCode !== 0) {
    throw new UsageError(`VO-box image ${image} is not in the local Docker engine`, { where: '--vobox-image', hint: 'build it first: gridforge image build vobox-slurm' });
  }
}

export async function deployVobox(state: TestbedState, h: HostRecord, image: string, say: (l: string) => void): Promise<void> {
  const root = join(state.dir, h.name);
  const access = await startDockerHost(h, root, join(root, 'ssh_host_ed25519_key'));
  if (state.repo?.checkout) await mountCheckout(h, state.repo.checkout, state.repo.name);
  const spec = writeSiteFile(state, { repoName: state.repo!.name, image, identityFile: access.identityFile });
  state.vobox = { container: spec.vobox.name, socket: access.socket, image };
  saveState(state);
  say(`VO-box: gridforge site deploy ${join(state.dir, 'site.yaml')} (image ${image})`);
  const r = await deploySite(spec, { yes: true, onProgress: (l) => say(`  deploy: ${l}`), healthTimeoutMs: 90_000 });
  say(`VO-box ${spec.vobox.name} up at ${spec.vobox.network.ip} (${r.changed ? 'deployed' : 'no changes'})`);
  // The batch client is ready when munged answers and the controller does.
  const run = voboxRunner(state);
  let last: ExecResult = { stdout: '', stderr: '', code: 1 };
  for (let i = 0; i < 60; i++) {
    last = await run('sinfo -h -o %P');
    if (last.code === 0) return;
    await sleep(500);
  }
  throw new GridforgeError(`testbed: the VO-box's Slurm client cannot reach the controller: ${last.stderr || last.stdout}`, { hint: `gridforge site logs ${join(state.dir, 'site.yaml')} batch` });
}

/** Run a command in the VO-box: in its container when deployed, else in the VO-box host itself. */
export function voboxRunner(state: TestbedState): (cmd: string, input?: string) => Promise<ExecResult> {
  const h = state.hosts.find((x) => x.role === 'vobox')!;
  if (state.vobox) {
    const { socket, container } = state.vobox;
    return async (cmd, input) => {
      const r = await execa('docker', ['-H', `unix://${socket}`, 'exec', '-i', container, 'sh', '-c', cmd], { reject: false, input: input ?? '', timeout: 30_000 });
      return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), code: r.exitCode ?? 1 };
    };
  }
  return (cmd, input) => hostExec(h, `SLURM_CONF=${shellQuote(state.slurm!.conf)} ${cmd}`, { timeoutMs: 30_000, input });
}

export { hostKeyPin };
