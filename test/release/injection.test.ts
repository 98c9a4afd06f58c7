/**
 * No site file can make a script gridforge renders from it run anything else: the JobAgent startup
 * script (templates/jobagent/startup.sh.hbs, `gridforge render jobagent-startup`) that runs on every
 * worker node, and the host scripts stacks/ builds from the site file (the sourced
 * /etc/cvmfs/default.local of stacks/settings.ts, the host setup of stacks/pulumi/program.ts, the
 * SSH commands of stacks/deploy.ts, preflight.ts, session.ts). For every string key that reaches a
 * script and every payload, either the site file is refused (UsageError, exit 2, naming the key) or
 * the rendered script, really executed by bash in a temporary directory against stub commands,
 * creates no marker file. The template layer is also tested on its own, with values that were never
 * validated (renderJobAgentStartup called directly): its quoting alone must hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dump as dumpYaml } from 'js-yaml';
import { renderJobAgentStartup } from '../../release/index.ts';
import { renderStartupFromSite } from '../../scripts/cli/render.ts';
import { deriveSettings } from '../../stacks/settings.ts';
import { hostSetupScript } from '../../stacks/pulumi/program.ts';
import { GridforgeError } from '../../base/errors.ts';

const reEscape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
import { UsageError } from '../../base/errors.ts';
import { gridforge, removeDir, tempDir } from './helpers.ts';

let dir: string;
let stubs: string;
let cvmfs: string;
let marker: string;

/** Payloads that run `touch <marker>` if the value ever becomes shell syntax. `M` is replaced. */
const PAYLOADS = [
  'x\ntouch M',
  'x\r\ntouch M\n#',
  '$(touch M)',
  '`touch M`',
  'x;touch M',
  'x|touch M',
  'x&touch M',
  'x&&touch M',
  'x>M',
  '{touch,M}',
  'x;{touch,M}',
  "x';touch M;'",
  'x";touch M;"',
  "x'$(touch M)'",
  'x"$(touch M)"',
  'x\\\ntouch M',
  '${IFS}$(touch${IFS}M)',
];

/** A valid site whose CVMFS tree is the stub tree of this test. */
function baseSite(): Record<string, any> {
  return {
    site: 'GFINJ-SITE',
    host: { address: 'vobox-host.example.org', user: 'root', hostKey: `SHA256:${'A'.repeat(43)}`, dockerSocket: '/var/run/docker.sock' },
    vobox: {
      name: 'gfinj-vobox',
      image: 'gridforge/vobox-slurm:debian-slurm-0.1.0',
      hostname: 'voboxgfinj.example.org',
      network: { name: 'sitenet', parent: 'eth0', subnet: '10.1.2.0/24', gateway: '10.1.2.1', ip: '10.1.2.20', mac: '02:42:0a:01:02:14', shim: { name: 'gfshim', ip: '10.1.2.30' } },
      services: ['ce', 'cron'],
      cvmfs: { repositories: ['alice.cern.ch'], mount: cvmfs },
      jalien: { version: '2.1.10-1' },
      volumes: { home: '/srv/gfinj/home', gridSecurity: '/srv/gfinj/grid-security' },
    },
  };
}

/**
 * Every string key of the site file that reaches a script, with how a payload is put into it so
 * that the old, loose checks would have let it through (a path keeps its leading `/`, a version
 * its `2.` and `-1`).
 */
const FIELDS: { key: string; wrap: (p: string) => string; reaches: string }[] = [
  { key: 'site', wrap: (p) => p, reaches: 'JobAgent script (comment, exports), cvmfs default.local, limits.d' },
  { key: 'vobox.hostname', wrap: (p) => `${p}.example.org`, reaches: 'JobAgent script (exports)' },
  { key: 'vobox.jalien.version', wrap: (p) => `2.1.${p}-1`, reaches: 'JobAgent script (alienv printenv), container env' },
  { key: 'vobox.cvmfs.mount', wrap: (p) => `/cvmfs/${p}`, reaches: 'JobAgent script (alienv, java path), preflight grep, pulumi host setup' },
  { key: 'vobox.cvmfs.repositories.0', wrap: (p) => p, reaches: 'JobAgent script (paths), deploy echo, cvmfs default.local' },
  { key: 'vobox.volumes.home', wrap: (p) => `/srv/${p}`, reaches: 'deploy mkdir, session missing_dirs, pulumi mkdir' },
  { key: 'vobox.volumes.gridSecurity', wrap: (p) => `/srv/${p}`, reaches: 'deploy mkdir, session missing_dirs, pulumi mkdir' },
  { key: 'vobox.network.parent', wrap: (p) => p, reaches: 'session cat /sys/class/net/<parent>' },
  { key: 'vobox.network.shim.name', wrap: (p) => p, reaches: 'deploy ip link add / del' },
  { key: 'host.dockerSocket', wrap: (p) => `/run/${p}`, reaches: 'SSH socket forward' },
  { key: 'host.user', wrap: (p) => p, reaches: 'ssh://user@address of the pulumi provider' },
  { key: 'host.address', wrap: (p) => p, reaches: 'ssh://user@address of the pulumi provider' },
];

function setKey(doc: Record<string, any>, key: string, value: string): void {
  const parts = key.split('.');
  let o = doc;
  for (const p of parts.slice(0, -1)) o = o[p];
  o[parts.at(-1)!] = value;
}

async function writeStub(file: string, body: string): Promise<void> {
  await writeFile(file, `#!/bin/bash\n${body}\n`);
  await chmod(file, 0o755);
}

beforeAll(async () => {
  dir = await tempDir('inj');
  marker = join(dir, 'PWNED');
  stubs = join(dir, 'stubs');
  cvmfs = join(dir, 'cvmfs');
  await mkdir(stubs);
  // `command -v jalien` of the script finds this stub; the JAR dir is next to it.
  await writeStub(join(stubs, 'jalien'), 'exit 0');
  // The stub java of the repository records what it was started with, byte for byte.
  const repo = join(cvmfs, 'alice.cern.ch');
  await mkdir(join(repo, 'bin'), { recursive: true });
  await mkdir(join(repo, 'java/JDKs/i686/jdk-latest/bin'), { recursive: true });
  await writeStub(join(repo, 'bin/alienv'), 'printf "%s\\0" "$@" > "$GFINJ_OUT/alienv.args"; echo "export GFINJ_ALIENV=1"');
  await writeStub(
    join(repo, 'java/JDKs/i686/jdk-latest/bin/java'),
    'printf "%s\\0" "$@" > "$GFINJ_OUT/java.args"; for v in site CE CEhost APMON_CONFIG ALIEN_CM_AS_LDAP_PROXY GFINJ_ALIENV EXTRA; do printf "%s" "${!v-}" > "$GFINJ_OUT/env.$v"; done',
  );
});

afterAll(() => removeDir(dir));

/** Run a script the way a batch system does (plain environment, a work dir as cwd); what did it leave? */
async function runScript(script: string, tag: string): Promise<{ code: number; out: string; stderr: string; work: string }> {
  const work = join(dir, `work-${tag}`);
  const out = join(dir, `out-${tag}`);
  await rm(work, { recursive: true, force: true });
  await rm(out, { recursive: true, force: true });
  await mkdir(work);
  await mkdir(out);
  const file = join(out, 'script.sh');
  await writeFile(file, script);
  const syntax = await execa('bash', ['-n', file], { reject: false });
  expect(syntax.exitCode, `bash -n: ${syntax.stderr}`).toBe(0);
  const r = await execa('bash', [file], { cwd: work, reject: false, extendEnv: false, env: { PATH: `${stubs}:/usr/bin:/bin`, GFINJ_OUT: out }, timeout: 20_000 });
  return { code: r.exitCode ?? -1, out, stderr: r.stderr, work };
}

/**
 * Nothing was created: no marker (a wrapped value may have added a suffix to its name, so any
 * `PWNED*` counts), nothing in the work dir (a redirection or a `touch` relative to it).
 */
async function expectNoEffect(work: string, what: string): Promise<void> {
  expect((await readdir(dir)).filter((n) => n.startsWith('PWNED')), `${what}: the marker file was created`).toEqual([]);
  expect(await readdir(work), `${what}: files appeared in the work directory`).toEqual([]);
}

describe('site file values cannot inject commands into rendered scripts', () => {
  it('every payload in every key that reaches a script is refused with exit 2 naming the key, or runs as plain data', async () => {
    let refused = 0;
    let accepted = 0;
    for (const field of FIELDS) {
      for (const [i, raw] of PAYLOADS.entries()) {
        const value = field.wrap(raw.replaceAll('M', marker));
        const doc = baseSite();
        setKey(doc, field.key, value);
        const file = join(dir, `site-${field.key}-${i}.yaml`);
        await writeFile(file, dumpYaml(doc));
        const what = `${field.key} = ${JSON.stringify(value)} (reaches ${field.reaches})`;
        let script: string;
        let spec;
        try {
          ({ script, spec } = renderStartupFromSite({ site: file }, join(dir, 'no-gridforge.yaml')));
        } catch (err) {
          expect(err, what).toBeInstanceOf(GridforgeError);
          const e = err as GridforgeError;
          expect(e, `${what}: ${e.message}`).toBeInstanceOf(UsageError); // exit 2
          expect(e.where, what).toMatch(new RegExp(`^${reEscape(file)}:\\d+:\\d+: ${reEscape(field.key)}$`)); // file:line:column: key
          expect(e.message, what).toMatch(/^expected /);
          refused++;
          continue;
        }
        accepted++;
        // Accepted: the JobAgent script and the host scripts built from this site run as data.
        const r = await runScript(script, `${i}`);
        await expectNoEffect(r.work, `${what}: JobAgent script`);
        const st = deriveSettings(spec);
        const local = await runScript(st.host.cvmfsDefaultLocal.content, `local-${i}`);
        expect(local.code, local.stderr).toBe(0);
        await expectNoEffect(local.work, `${what}: cvmfs default.local`);
        const checks = hostSetupScript(st).split('\n').filter((l) => l.startsWith('ls '));
        const host = await runScript(`${checks.join('\n')}\n`, `host-${i}`);
        await expectNoEffect(host.work, `${what}: pulumi host setup (repository checks)`);
      }
    }
    // Every payload carries shell syntax: none of them is a valid value of a key that reaches a script.
    expect({ refused, accepted }).toEqual({ refused: FIELDS.length * PAYLOADS.length, accepted: 0 });
  });

  it('the CLI refuses a hostile site file with exit 2, naming the key and the allowed form', async () => {
    for (const [key, value] of [
      ['site', `x\ntouch ${marker}`],
      ['vobox.cvmfs.mount', `/cvmfs;touch ${marker}`],
    ] as const) {
      const doc = baseSite();
      setKey(doc, key, value);
      const file = join(dir, `cli-${key}.yaml`);
      await writeFile(file, dumpYaml(doc));
      const out = join(dir, `cli-${key}.sh`);
      const r = await gridforge(['render', 'jobagent-startup', '--site', file, '-o', out]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${reEscape(file)}:\\d+:\\d+: ${reEscape(key)}: expected `));
      expect(existsSync(out)).toBe(false);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('a valid site renders a script that runs the JobAgent with the site values intact', async () => {
    const file = join(dir, 'valid.yaml');
    await writeFile(file, dumpYaml(baseSite()));
    const { script } = renderStartupFromSite({ site: file, env: ['EXTRA=a b;$(x)`y`\'"'] }, join(dir, 'no-gridforge.yaml'));
    const r = await runScript(script, 'valid');
    expect(r.code, r.stderr).toBe(0);
    const args = (await readFile(join(r.out, 'java.args'), 'utf8')).split('\0').slice(0, -1);
    expect(args).toEqual(['-client', '-Xms16M', '-Xmx64M', '-Djdk.lang.Process.launchMechanism=vfork', '-cp', `${stubs}/../lib/alien-users.jar`, 'alien.site.JobRunner']);
    expect((await readFile(join(r.out, 'alienv.args'), 'utf8')).split('\0')).toEqual(['printenv', 'JAliEn/2.1.10-1', '']);
    expect(await readFile(join(r.out, 'env.site'), 'utf8')).toBe('GFINJ-SITE');
    expect(await readFile(join(r.out, 'env.CE'), 'utf8')).toBe('ALICE::GFINJ-SITE::CE');
    expect(await readFile(join(r.out, 'env.GFINJ_ALIENV'), 'utf8')).toBe('1');
    expect(await readFile(join(r.out, 'env.EXTRA'), 'utf8')).toBe('a b;$(x)`y`\'"');
    await expectNoEffect(r.work, 'valid site');
  });
});

describe('the JobAgent template quotes every value by itself (values never validated)', () => {
  it('payloads in site, CE host, CE, MonALISA, proxy and --env values reach the JobAgent as data', async () => {
    for (const [i, raw] of PAYLOADS.entries()) {
      const p = raw.replaceAll('M', marker);
      const script = renderJobAgentStartup({
        site: p,
        ceHost: `h${p}`,
        ce: `ce${p}`,
        monalisa: `ml${p}`,
        cmProxy: `px${p}`,
        cvmfsRoot: join(cvmfs, 'alice.cern.ch'),
        env: { EXTRA: p },
      });
      const what = `payload ${JSON.stringify(p)}`;
      const r = await runScript(script, `tpl-${i}`);
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      await expectNoEffect(r.work, what);
      // A value in a comment stays on its one comment line.
      expect(script.split('\n').slice(0, 8).every((l) => l.startsWith('#')), what).toBe(true);
      const env = async (v: string) => readFile(join(r.out, `env.${v}`), 'utf8');
      expect(await env('site'), what).toBe(p);
      expect(await env('CEhost'), what).toBe(`h${p}`);
      expect(await env('CE'), what).toBe(`ce${p}`);
      expect(await env('APMON_CONFIG'), what).toBe(`ml${p}`);
      expect(await env('ALIEN_CM_AS_LDAP_PROXY'), what).toBe(`px${p}`);
      expect(await env('EXTRA'), what).toBe(p);
    }
  });

  it('refuses a CVMFS root, class or jar that is not plain (exit 2) and quotes a class name with $', async () => {
    const base = { site: 'S', ceHost: 'h.example.org', cvmfsRoot: '/cvmfs/alice.cern.ch' };
    for (const cvmfsRoot of ['/cvmfs;touch x', '/cvmfs|x', '/cvmfs&x', '/cvmfs>x', '/cvmfs/{a,b}', 'relative/path']) {
      expect(() => renderJobAgentStartup({ ...base, cvmfsRoot }), cvmfsRoot).toThrow(/not a plain absolute path/);
    }
    const script = renderJobAgentStartup({ ...base, java64: true, mainClass: 'alien.site.Job$Runner' });
    expect(script).toMatch(/ 'alien\.site\.Job\$Runner'\n$/);
  });
});
