/**
 * Real engine: build the Debian VO-box (slurm flavour) and the job image through the CLI, run them.
 * - VO-box with GRIDFORGE_SERVICES=cron,rsyslog,sshd: each RUNNING in `supervisorctl status`;
 *   `systemctl status cron` and `service rsyslog status` work; a killed service comes back; the
 *   services left out have no program and no process; unset -> the default set with a log line;
 *   an unknown name stops the container with exit 2.
 * - The CE path with a stand-in alienv/jalien (the real ones come from CVMFS): JALIEN_VERSION is
 *   written to version.properties, the CE resolves it (and the module default without it), writes
 *   /run/jalien/ce.version, `gridforge-ce-version` prints it; munged fails clearly without the
 *   site's key and runs with one.
 * - Job image: `java -version && ps --version` succeeds, the bind points exist and take binds.
 * - A failing build exits 1 with the failing step and log tail and leaves no tag.
 * Everything created is named gfimg-... (containers) or gfimgtest/... (images) and removed in afterAll.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianImagesYaml, docker, gridforge, lastLine, tempConfig, waitFor, IMAGE_PREFIX, PREFIX } from './helpers.ts';

const RUN = `${process.pid}`;
const VERSION = `t${RUN}`;
const CONFIG = `prefix: ${IMAGE_PREFIX}
version: ${VERSION}
bases:
  debian:
    image: gridforge/base:debian-bookworm
  # a base no engine has; pulling it only tries loopback (nothing listens on port 1)
  elx:
    image: localhost:1/gfimg-no-such-base:1
    packageManager: dnf
${debianImagesYaml(`  broken:
    kind: job
    os: debian
    packages: broken.txt
  nobase:
    kind: vobox
    os: elx
    flavour: none
`)}`;
const VOBOX_REF = `${IMAGE_PREFIX}/vobox-slurm:debian-slurm-${VERSION}`;
const JOB_REF = `${IMAGE_PREFIX}/job:debian-job-${VERSION}`;
const BROKEN_REF = `${IMAGE_PREFIX}/broken:debian-job-${VERSION}`;

const containers: string[] = [];
const images: string[] = [];
let cfg: { dir: string; file: string };

async function run(name: string, args: string[]): Promise<string> {
  const cname = `${PREFIX}-${name}-${RUN}`;
  containers.push(cname);
  await docker(['rm', '-f', cname]);
  const r = await docker(['run', '-d', '--name', cname, ...args]);
  expect(r.code, r.stderr).toBe(0);
  return cname;
}

async function exec(c: string, cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return docker(['exec', c, 'bash', '-c', cmd]);
}

/** supervisorctl status as { name: { state, pid } }. */
async function status(c: string): Promise<Record<string, { state: string; pid?: number }>> {
  const r = await docker(['exec', c, 'supervisorctl', 'status']);
  const out: Record<string, { state: string; pid?: number }> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(\S+)(?:\s+pid (\d+))?/.exec(line);
    if (m) out[m[1]] = { state: m[2], pid: m[3] ? Number(m[3]) : undefined };
  }
  return out;
}

async function waitState(c: string, names: string[], state: string, timeoutMs = 30_000) {
  return waitFor(async () => {
    const s = await status(c).catch(() => ({}) as Record<string, { state: string; pid?: number }>);
    return names.every((n) => s[n]?.state === state) ? s : undefined;
  }, timeoutMs);
}

beforeAll(() => {
  cfg = tempConfig(CONFIG, { 'broken.txt': 'bash\ngridforge-no-such-package\n' });
});

afterAll(async () => {
  for (const c of containers) await docker(['rm', '-f', '-v', c]);
  for (const i of images) await docker(['rmi', '-f', i]);
  rmSync(cfg.dir, { recursive: true, force: true });
});

describe('image build on the real Docker engine', () => {
  it('builds vobox-slurm (flattened by default): the ref is the last stdout line, the gridforge image labels set', async () => {
    const r = await gridforge(['--config', cfg.file, 'image', 'build', 'vobox-slurm', '--json'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const rec = JSON.parse(r.stdout);
    images.push(rec.ref);
    if (rec.sourceDigest) images.push(rec.sourceDigest);
    expect(rec).toMatchObject({ name: 'vobox-slurm', ref: VOBOX_REF, os: 'debian', variant: 'slurm', version: VERSION });
    expect(r.stderr).toMatch(/Step \d+\/\d+ : RUN/); // streamed progress
    const inspect = await docker(['image', 'inspect', VOBOX_REF, '--format', '{{json .Config.Labels}}|{{len .RootFS.Layers}}|{{.Id}}|{{json .Config.Entrypoint}}']);
    expect(inspect.code, inspect.stderr).toBe(0);
    const [labelsJson, layers, id, entrypoint] = inspect.stdout.split('|');
    const labels = JSON.parse(labelsJson);
    for (const key of ['org.opencontainers.image.version', 'org.opencontainers.image.revision', 'org.opencontainers.image.source', 'org.opencontainers.image.created', 'io.gridforge.template-hash']) {
      expect(labels[key], key).toBeTruthy();
    }
    expect(labels['org.opencontainers.image.version']).toBe(VERSION);
    expect(labels['org.opencontainers.image.created']).toBe('2023-11-14T22:13:20.000Z');
    // the temporary config is outside git: the revision is gridforge's own checkout
    expect(labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$/);
    expect(labels['io.gridforge.template-hash']).toBe(rec.templateHash);
    expect(id).toBe(rec.id);
    // the untagged layered build result is removed once flattened (no <none> image per build)
    expect(rec.sourceDigest).toMatch(/^sha256:/);
    expect((await docker(['image', 'inspect', rec.sourceDigest])).code).not.toBe(0);
    expect(JSON.parse(entrypoint)).toEqual(['/usr/local/sbin/gridforge-entrypoint']);
    if (rec.flattened) expect(Number(layers)).toBe(1);
  }, 600_000);

  it('builds job with --no-flatten; human output ends with the ref', async () => {
    const r = await gridforge(['--config', cfg.file, 'image', 'build', 'job', '--no-flatten']);
    images.push(JOB_REF);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(lastLine(r.stdout)).toBe(JOB_REF);
    expect(r.stdout).toContain('layered');
    const layers = await docker(['image', 'inspect', JOB_REF, '--format', '{{len .RootFS.Layers}}']);
    expect(Number(layers.stdout)).toBeGreaterThan(1);
  }, 600_000);

  it('a failing build exits 1 with the failing step and the log tail, and leaves no tag', async () => {
    const r = await gridforge(['--config', cfg.file, 'image', 'build', 'broken']);
    images.push(BROKEN_REF);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/error: docker build of broken failed at step \d+\/\d+: RUN printf/);
    expect(r.stderr).toMatch(/last \d+ lines of the build log:\n/);
    expect(r.stderr).toMatch(/\| .*Unable to locate package gridforge-no-such-package/);
    const tag = await docker(['image', 'inspect', BROKEN_REF]);
    expect(tag.code).not.toBe(0);
  }, 300_000);

  it('a base image the engine cannot get: exit 1 at the FROM step, with the base named in the fix', async () => {
    const r = await gridforge(['--config', cfg.file, 'image', 'build', 'nobase']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/failed at step 1\/\d+: FROM localhost:1\/gfimg-no-such-base:1/);
    expect(r.stderr).toMatch(/The base image localhost:1\/gfimg-no-such-base:1 is not on the engine and could not be pulled: .*bases\.elx\.image/);
    expect((await docker(['image', 'inspect', `${IMAGE_PREFIX}/nobase:elx-none-${VERSION}`])).code).not.toBe(0);
  }, 120_000);
});

describe('VO-box container', () => {
  it('GRIDFORGE_SERVICES=cron,rsyslog,sshd: all RUNNING; systemctl/service work; a killed service comes back; others never start', async () => {
    const c = await run('vobox', ['-e', 'GRIDFORGE_SERVICES=cron,rsyslog,sshd', VOBOX_REF]);
    const s = await waitState(c, ['cron', 'rsyslog', 'sshd'], 'RUNNING');
    expect(s, JSON.stringify(await status(c))).toBeTruthy();
    expect(Object.keys(s!).sort()).toEqual(['cron', 'rsyslog', 'sshd']);

    const pid1 = await exec(c, 'cat /proc/1/cmdline | tr "\\0" " "');
    expect(pid1.stdout).toContain('supervisord');

    const sc = await docker(['exec', c, 'systemctl', 'status', 'cron']);
    expect(sc.code, sc.stderr).toBe(0);
    expect(sc.stdout).toMatch(/^cron\s+RUNNING/);
    const sv = await docker(['exec', c, 'service', 'rsyslog', 'status']);
    expect(sv.code, sv.stderr).toBe(0);
    expect(sv.stdout).toMatch(/^rsyslog\s+RUNNING/);
    expect((await docker(['exec', c, 'systemctl', 'is-active', 'sshd.service'])).stdout).toBe('active');

    // rsyslog really serves /dev/log
    await exec(c, `logger gfimg-probe-${RUN}`);
    const logged = await waitFor(async () => (await exec(c, `grep -c gfimg-probe-${RUN} /var/log/syslog`)).stdout.trim() === '1', 10_000);
    expect(logged).toBe(true);

    // kill the service's process: supervisord starts it again with a new PID
    const before = s!.cron.pid!;
    expect((await exec(c, `kill -9 ${before}`)).code).toBe(0);
    const after = await waitFor(async () => {
      const st = await status(c);
      return st.cron?.state === 'RUNNING' && st.cron.pid !== before ? st.cron : undefined;
    }, 20_000);
    expect(after, 'cron came back').toBeTruthy();
    expect((await exec(c, `kill -0 ${before} 2>/dev/null && echo alive || echo gone`)).stdout).toBe('gone');

    // stop/start through systemctl
    expect((await docker(['exec', c, 'systemctl', 'stop', 'sshd'])).code).toBe(0);
    const stopped = await docker(['exec', c, 'systemctl', 'status', 'sshd']);
    expect(stopped.code).toBe(3);
    expect(stopped.stdout).toMatch(/STOPPED/);
    expect((await docker(['exec', c, 'systemctl', 'start', 'sshd'])).code).toBe(0);

    // services left out: no program, no process, systemctl says inactive (exit 3)
    const ce = await docker(['exec', c, 'systemctl', 'status', 'ce']);
    expect(ce.code).toBe(3);
    expect(ce.stdout).toContain('not enabled');
    const procs = await exec(c, 'ps -eo args');
    expect(procs.stdout).not.toMatch(/munged|gridforge-ce-start|jalien|gridforge-proxy-renewal|gridforge-monalisa/);
    expect((await exec(c, 'ls /etc/gridforge/enabled')).stdout.split('\n').sort()).toEqual(['cron.conf', 'rsyslog.conf', 'sshd.conf']);

    const logs = await docker(['logs', c]);
    expect(logs.stdout).toContain('enabled services: cron, rsyslog, sshd');
  });

  it('GRIDFORGE_SERVICES unset: starts cron, rsyslog, sshd and says so in its log', async () => {
    const c = await run('vobox-default', [VOBOX_REF]);
    expect(await waitState(c, ['cron', 'rsyslog', 'sshd'], 'RUNNING')).toBeTruthy();
    expect(Object.keys(await status(c)).sort()).toEqual(['cron', 'rsyslog', 'sshd']);
    const logs = await docker(['logs', c]);
    expect(logs.stdout).toMatch(/GRIDFORGE_SERVICES is unset: starting only the services that need nothing from the site \(cron,rsyslog,sshd\)/);
  });

  it('an unknown service name in GRIDFORGE_SERVICES stops the container with exit 2 and the valid names', async () => {
    const r = await docker(['run', '--rm', '-e', 'GRIDFORGE_SERVICES=cron,jalien', VOBOX_REF]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("GRIDFORGE_SERVICES: unknown service 'jalien'. Fix: use a comma-separated list of: ce, monalisa, batch, cron, rsyslog, proxy-renewal, sshd");
  });

  it('CE: JALIEN_VERSION -> version.properties -> alienv printenv JAliEn/<v> -> /run/jalien/ce.version; module default without it; munged needs the site key', async () => {
    // Stand-ins for CVMFS's alienv and JAliEn: alienv prints shell code like Environment Modules does.
    const fake = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-alienv-`));
    try {
      mkdirSync(path.join(fake, 'bin'));
      writeFileSync(path.join(fake, 'alienv'), `#!/bin/bash
[ "$1" = printenv ] || exit 2
mod="$2"; v="\${mod#JAliEn/}"; [ "$mod" = JAliEn ] && v=2.1.2-1
echo "export PATH=/opt/fake/bin:\\$PATH; export LOADEDMODULES=JAliEn/$v; export FAKE_JALIEN=$v;"
`);
      writeFileSync(path.join(fake, 'bin', 'jalien'), '#!/bin/bash\necho "jalien $* ($FAKE_JALIEN)"\nexec sleep infinity\n');
      chmodSync(path.join(fake, 'alienv'), 0o755);
      chmodSync(path.join(fake, 'bin', 'jalien'), 0o755);
      chmodSync(fake, 0o755);

      // the alicesgm home is a volume at deploy time: here an empty host folder
      const home = path.join(fake, 'home');
      mkdirSync(home);
      const c = await run('vobox-ce', ['-e', 'GRIDFORGE_SERVICES=ce,batch', '-e', 'JALIEN_VERSION=2.1.3-1', '-e', 'ALIENV=/opt/fake/alienv', '-v', `${fake}:/opt/fake:ro`, '-v', `${home}:/home/alicesgm`, VOBOX_REF]);
      expect(await waitState(c, ['ce'], 'RUNNING', 40_000), JSON.stringify(await status(c))).toBeTruthy();
      expect((await exec(c, 'cat /home/alicesgm/.jalien/version.properties')).stdout).toBe('JALIEN=2.1.3-1');
      expect(readFileSync(path.join(home, '.jalien/version.properties'), 'utf8')).toBe('JALIEN=2.1.3-1\n');
      expect((await exec(c, 'stat -c %U /home/alicesgm /home/alicesgm/.jalien /home/alicesgm/.jalien/version.properties')).stdout).toBe('alicesgm\nalicesgm\nalicesgm');
      const v = await docker(['exec', c, 'gridforge-ce-version']);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toBe('2.1.3-1');
      const pid = (await exec(c, 'cat /run/jalien/ce.pid')).stdout;
      expect((await exec(c, `ps -o user=,args= -p ${pid}`)).stdout).toMatch(/^alicesgm\s+sleep infinity/);
      expect((await exec(c, 'cat /var/log/gridforge/ce.log')).stdout).toContain('jalien alien.site.ComputingElement (2.1.3-1)');

      // without a pinned version the CE uses (and reports) the module default
      await exec(c, 'rm /home/alicesgm/.jalien/version.properties && supervisorctl restart ce');
      const dflt = await waitFor(async () => (await docker(['exec', c, 'gridforge-ce-version'])).stdout === '2.1.2-1', 30_000);
      expect(dflt).toBe(true);

      // batch (munged) without the site's munge key: FATAL with the fix in its log
      expect(await waitState(c, ['batch'], 'FATAL', 40_000)).toBeTruthy();
      expect((await exec(c, 'cat /var/log/gridforge/batch.log')).stdout).toContain('/etc/munge/munge.key is missing. Fix: mount the site');
      // with a key it runs and munge round-trips a credential
      await exec(c, 'dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null && chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key');
      expect((await docker(['exec', c, 'systemctl', 'start', 'batch'])).code).toBe(0);
      expect(await waitState(c, ['batch'], 'RUNNING', 20_000)).toBeTruthy();
      expect((await exec(c, 'munge -n | unmunge')).stdout).toMatch(/STATUS:\s+Success/);
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  it('the CE without CVMFS fails clearly in its log', async () => {
    const c = await run('vobox-nocvmfs', ['-e', 'GRIDFORGE_SERVICES=ce,cron', VOBOX_REF]);
    expect(await waitState(c, ['ce'], 'FATAL', 60_000)).toBeTruthy();
    expect((await exec(c, 'cat /var/log/gridforge/ce.log')).stdout).toContain('ce: error: alienv not found at /cvmfs/alice.cern.ch/bin/alienv. Fix: bind-mount CVMFS');
    expect((await docker(['exec', c, 'gridforge-ce-version'])).code).toBe(1);
    expect((await status(c)).cron.state).toBe('RUNNING');
  });
});

describe('job container', () => {
  it('java -version && ps --version succeeds; the bind points exist and take binds', async () => {
    const probe = await docker(['run', '--rm', JOB_REF, '/bin/bash', '-c', 'java -version && ps --version']);
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.stderr).toMatch(/openjdk version "17/);
    expect(probe.stdout).toMatch(/procps-ng/);
    const points = await docker(['run', '--rm', JOB_REF, '/bin/bash', '-c', 'test -d /cvmfs && test -d /workdir && test -d /srv && test -f /etc/localtime && echo ok']);
    expect(points.stdout).toBe('ok');
    const work = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-workdir-`));
    try {
      writeFileSync(path.join(work, 'payload.sh'), 'echo payload-ran\n');
      const bound = await docker(['run', '--rm', '--read-only', '-v', `${work}:/workdir`, '-v', `${work}:/cvmfs:ro`, '-v', '/etc/localtime:/etc/localtime:ro', JOB_REF, '/bin/bash', '-c', 'cd /workdir && bash payload.sh && ls /cvmfs']);
      expect(bound.code, bound.stderr).toBe(0);
      expect(bound.stdout).toBe('payload-ran\npayload.sh');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
