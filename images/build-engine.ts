/**
 * The Docker engine as the build sees it: the environment the docker CLI runs with, and a check
 * that an engine answers before any work starts (exit 1 with a fix when it does not).
 */
import { execa } from 'execa';
import { GridforgeError } from '../base/errors.ts';

/** The classic builder: engines here are 20.10 without buildx; its "Step N/M" lines drive progress. */
export function dockerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };
}

export interface EngineInfo {
  serverVersion: string;
  apiVersion: string;
}

/** Ask the engine for its version; throws GridforgeError (exit 1) when none answers. */
export async function checkEngine(): Promise<EngineInfo> {
  const host = process.env.DOCKER_HOST ? `DOCKER_HOST=${process.env.DOCKER_HOST}` : 'the default socket unix:///var/run/docker.sock';
  let r;
  try {
    r = await execa('docker', ['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}'], {
      env: dockerEnv(),
      reject: false,
      timeout: 20_000,
    });
  } catch (err: any) {
    throw new GridforgeError('the docker CLI cannot be run', {
      where: 'docker',
      hint: 'Install the engine and CLI (apt-get install docker.io, or bash scripts/setup.sh) and make sure `docker` is on PATH.',
      cause: err,
    });
  }
  if (r.failed && r.exitCode === undefined && !r.timedOut) {
    throw new GridforgeError('the docker CLI is not installed', {
      where: 'docker',
      hint: 'Install it with apt-get install docker.io (or run bash scripts/setup.sh).',
    });
  }
  const [serverVersion, apiVersion] = r.stdout.trim().split(/\s+/);
  if (r.exitCode !== 0 || !serverVersion || !apiVersion) {
    const reason = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).pop() ?? `exit ${r.exitCode}`;
    throw new GridforgeError(`the Docker engine is not reachable at ${host} (${reason})`, {
      where: 'docker engine',
      hint: 'Start dockerd (bash scripts/lib/ensure-docker.sh, or systemctl start docker) or point DOCKER_HOST at a running engine, then retry.',
    });
  }
  return { serverVersion, apiVersion };
}
