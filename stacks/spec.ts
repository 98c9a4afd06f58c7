/**
 * The site file (`sites/<name>.yaml`) as a typed, validated spec. Every error names the file and the
 * key path, says what was expected, and how to fix it (UsageError, exit 2).
 */
import { readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { homedir } from 'node:os';
import { locateKey, readYamlFile } from '../base/yaml-file.ts';
import { z } from 'zod';
import { UsageError } from '../base/errors.ts';
import { ipToInt, parseCidr, inSubnet } from './net.ts';

import { SERVICES, type ServiceName as Service } from '../templates/vobox-contract.ts';
export { SERVICES, type Service };

const ipv4 = z.string().refine((s) => ipToInt(s) !== null, { message: 'expected an IPv4 address like 10.1.2.20' });
/*
 * Values that reach shell scripts (the JobAgent startup script of templates/jobagent/, the host
 * commands of stacks/deploy.ts, preflight.ts, session.ts, pulumi/program.ts, the sourced
 * /etc/cvmfs/default.local of settings.ts) are allowlisted here, so no site file can carry a
 * newline, quote, `$`, backtick, `;`, `|`, `&`, redirection, glob or brace into them. The templates
 * quote as well (templates/render.ts); this is the first of the two walls.
 */
const SAFE_PATH = /^\/[A-Za-z0-9._+@/-]*$/;
const SAFE_PATH_FORM = 'letters, digits and . _ + @ - / only';
/** An absolute path on the host, made of safe characters only. */
const safeAbsPath = z.string().regex(SAFE_PATH, `expected an absolute path starting with / (${SAFE_PATH_FORM})`);
/** Like safeAbsPath, or `~/...` (resolved against $HOME by loadSiteSpec). */
const absPath = z
  .string()
  .regex(/^(\/|~\/)[A-Za-z0-9._+@/-]*$/, `expected an absolute path starting with / or ~/ (${SAFE_PATH_FORM})`);

const hostSchema = z
  .object({
    address: z
      .string()
      .regex(/^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)$/, 'expected a host name or IP address (letters, digits, . - ; IPv6 without brackets)'),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, 'expected a user name (letters, digits, _ . -; not starting with -)').default('root'),
    identityFile: z.string().optional(),
    /** Use the SSH agent ($SSH_AUTH_SOCK, or this socket path). Default: when no identityFile. */
    agent: z.union([z.boolean(), z.string()]).optional(),
    hostKey: z
      .string()
      .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected "SHA256:<43 base64 chars>" as printed by ssh-keygen -lf')
      .optional(),
    knownHosts: z.string().optional(),
    dockerSocket: safeAbsPath.default('/var/run/docker.sock'),
    connectTimeoutMs: z.number().int().positive().default(10_000),
    keepAliveIntervalMs: z.number().int().positive().default(5_000),
    /**
     * A remote command with no output and no input for this long is stopped and fails (keep-alive
     * catches a dead connection, not a command that hangs, e.g. `ls` on a hung /cvmfs mount).
     */
    commandIdleTimeoutMs: z.number().int().positive().default(600_000),
  })
  .strict()
  .refine((h) => h.hostKey !== undefined || h.knownHosts !== undefined, {
    message: 'no host key pin: set hostKey: "SHA256:..." (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host) or knownHosts: <file>',
    path: ['hostKey'],
  });

const networkSchema = z
  .object({
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'expected a Docker network name'),
    parent: z.string().regex(/^[a-zA-Z0-9_.@-]{1,15}$/, 'expected an interface name like eth0'),
    subnet: z.string().refine((s) => parseCidr(s) !== null, { message: 'expected an IPv4 CIDR like 10.1.2.0/24 (network address, prefix 8-30)' }),
    gateway: ipv4,
    ip: ipv4,
    mac: z
      .string()
      .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'expected a MAC address like 02:42:0a:01:02:14')
      .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, { message: 'MAC must be unicast (lowest bit of the first octet 0), e.g. 02:...' })
      .refine((m) => m !== '00:00:00:00:00:00', { message: 'MAC must not be all zero' })
      .transform((m) => m.toLowerCase()),
    dns: z.array(ipv4).default([]),
    /** Optional host-side macvlan interface so the host itself can reach its VO-box. */
    shim: z.object({ name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/, 'expected an interface name like gf-shim (letters, digits, _ . -, at most 15)'), ip: ipv4 }).strict().optional(),
  })
  .strict()
  .superRefine((n, ctx) => {
    const net = parseCidr(n.subnet);
    if (!net) return;
    for (const key of ['ip', 'gateway'] as const) {
      const v = ipToInt(n[key]);
      if (v === null) continue;
      if (!inSubnet(v, net)) ctx.addIssue({ code: 'custom', path: [key], message: `${n[key]} is outside subnet ${n.subnet}; pick an address inside it` });
      else if (v === net.network || v === net.broadcast) ctx.addIssue({ code: 'custom', path: [key], message: `${n[key]} is the network or broadcast address of ${n.subnet}` });
    }
    if (n.ip === n.gateway) ctx.addIssue({ code: 'custom', path: ['ip'], message: `ip ${n.ip} equals the gateway; pick a free address` });
    if (n.shim) {
      const s = ipToInt(n.shim.ip);
      if (s !== null && !inSubnet(s, net)) ctx.addIssue({ code: 'custom', path: ['shim', 'ip'], message: `${n.shim.ip} is outside subnet ${n.subnet}` });
      if (n.shim.ip === n.ip || n.shim.ip === n.gateway) ctx.addIssue({ code: 'custom', path: ['shim', 'ip'], message: 'shim ip must differ from the VO-box ip and the gateway' });
    }
  });

const voboxSchema = z
  .object({
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'expected a container name (letters, digits, _ . -)'),
    image: z.string().regex(/^[A-Za-z0-9./~_][^\x00-\x1f\x7f]*$/, 'expected an image reference like registry/vobox:1.0 or an archive path like ./vobox.tar (no control characters, not starting with -)'),
    hostname: z
      .string()
      .regex(/^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$/, 'expected a fully qualified host name (the site LDAP entry), like voboxzenith.example.org'),
    network: networkSchema,
    services: z
      .array(z.enum(SERVICES, { errorMap: () => ({ message: `unknown service; known: ${SERVICES.join(', ')}` }) }))
      .min(1)
      .refine((s) => new Set(s).size === s.length, { message: 'services are listed twice' }),
    limits: z.object({ nofile: z.number().int().min(1024).max(1 << 30) }).strict().default({ nofile: 1048576 }),
    privileged: z.boolean().default(false),
    capabilities: z.array(z.string().regex(/^[A-Z_]+$/, 'expected a capability name like NET_ADMIN')).default([]),
    cvmfs: z
      .object({
        repositories: z.array(z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'expected a repository name like alice.cern.ch (lower-case letters, digits, . -)')).default(['alice.cern.ch']),
        mount: safeAbsPath.default('/cvmfs'),
      })
      .strict()
      .default({}),
    // The rule of release/jalien/version.ts (JALIEN_VERSION_RE plus its safe characters).
    jalien: z.object({ version: z.string().regex(/^[1-2]\.[A-Za-z0-9._+-]*-[0-9]+$/, 'expected a JAliEn version like 2.1.3-1 (letters, digits, . _ + -)') }).strict().optional(),
    volumes: z.object({ home: absPath, gridSecurity: absPath }).strict(),
    // The batch client's site inputs (sites/README.md "Batch client"): bound read-only into the VO-box by settings.ts.
    batch: z
      .object({
        slurm: z
          .object({
            mungeKey: safeAbsPath,
            conf: safeAbsPath.optional(),
            configless: z.string().regex(/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/, 'expected the controller as host or host:port, like slurmctl.example.org:6817').optional(),
          })
          .strict()
          .refine((b) => !!b.conf !== !!b.configless, { message: 'give exactly one of conf (the site slurm.conf) and configless (the controller host:port)' }),
      })
      .strict()
      .optional(),
    logs: z.object({ maxSize: z.string().regex(/^\d+[kmg]$/, 'expected a size like 50m (digits, then k, m or g)').default('50m'), maxFile: z.number().int().min(1).default(5) }).strict().default({}),
  })
  .strict()
  .refine((v) => !(v.privileged && v.capabilities.length > 0), {
    message: 'privileged: true and capabilities are exclusive; keep one',
    path: ['capabilities'],
  });

export const siteSpecSchema = z
  .object({
    site: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a site name like CERN-ZENITH (letters, digits, _ . -, at most 64, starting with a letter or digit)'),
    host: hostSchema,
    vobox: voboxSchema,
    /** elastic worker nodes (Slurm cloud nodes): validated by elastic/pool.ts, not here */
    elastic: z.record(z.unknown()).optional(),
  })
  .strict();

export type SiteSpec = z.infer<typeof siteSpecSchema> & { /** absolute path of the site file, when loaded from one */ file?: string };

function expandPath(p: string, baseDir: string): string {
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return resolve(baseDir, p);
}

const HINTS: Record<string, string> = {
  'host.hostKey': 'Pin the host key: hostKey: "SHA256:..." from `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the host, or knownHosts: <file>.',
  'vobox.network.subnet': 'Write the subnet as network address / prefix, e.g. 10.1.2.0/24.',
  'vobox.services': `Use only: ${SERVICES.join(', ')}.`,
};

/**
 * Validate a parsed document; throws UsageError naming file + key path (and `line:column` when
 * the YAML text is given).
 */
export function parseSiteSpec(doc: unknown, file = '<site spec>', text?: string): SiteSpec {
  const r = siteSpecSchema.safeParse(doc);
  if (!r.success) {
    const issues = r.error.issues;
    const first = issues[0];
    const key = first.path.join('.') || '(top level)';
    const hintKey = first.path.filter((p) => typeof p === 'string').join('.');
    const hint =
      HINTS[hintKey] ??
      (first.code === 'unrecognized_keys'
        ? `Remove or correct the key(s) ${first.keys.join(', ')} (see sites/example.yaml for the known keys).`
        : `Correct ${key} in ${file} (see sites/example.yaml).`);
    const at = text === undefined ? undefined : locateKey(text, first.path);
    throw new UsageError(`${first.message}`, {
      where: `${file}${at ? `:${at}` : ''}: ${key}`,
      hint,
      detail: issues.length > 1 ? issues.slice(1).map((i) => `  also ${i.path.join('.') || '(top level)'}: ${i.message}`).join('\n') : undefined,
    });
  }
  return r.data;
}

/**
 * Read, validate and resolve a site file. Relative paths (identityFile, knownHosts) are resolved
 * against the file's folder; `~/` against $HOME. Also checks sibling site files in the same folder
 * for the same host: duplicate container names, IPs or MACs on one host are refused.
 */
export function loadSiteSpec(file: string, opts: { checkSiblings?: boolean } = {}): SiteSpec {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new UsageError('site file not found', { where: file, hint: 'Give the path of a site YAML file, e.g. sites/example.yaml.' });
  const src = readYamlFile(file, { missingHint: 'Give the path of a site YAML file, e.g. sites/example.yaml.' });
  const spec = parseSiteSpec(src.doc, file, src.text);
  const dir = dirname(abs);
  if (spec.host.identityFile) spec.host.identityFile = expandPath(spec.host.identityFile, dir);
  if (spec.host.knownHosts) spec.host.knownHosts = expandPath(spec.host.knownHosts, dir);
  for (const k of ['home', 'gridSecurity'] as const) if (spec.vobox.volumes[k].startsWith('~/')) spec.vobox.volumes[k] = expandPath(spec.vobox.volumes[k], dir);
  // A local archive image is resolved relative to the site file too.
  if (/\.(tar|tar\.gz|tgz)$/.test(spec.vobox.image) && !spec.vobox.image.includes('://')) {
    const p = expandPath(spec.vobox.image, dir);
    spec.vobox.image = p;
  }
  spec.file = abs;
  if (opts.checkSiblings !== false) checkSiblings(spec, abs);
  return spec;
}

/** Refuse duplicate name / IP / MAC among site files that target the same host. */
export function checkSiblings(spec: SiteSpec, abs: string): void {
  const dir = dirname(abs);
  for (const f of readdirSync(dir)) {
    if (!/\.ya?ml$/.test(f) || join(dir, f) === abs) continue;
    let other: SiteSpec;
    try {
      other = parseSiteSpec(readYamlFile(join(dir, f)).doc, f);
    } catch {
      continue; // not a site file (or broken: it is reported when it is used itself)
    }
    if (other.host.address !== spec.host.address || other.host.port !== spec.host.port) continue;
    const clash = (what: string, key: string) => {
      throw new UsageError(`${what} is also used by ${f} on the same host ${spec.host.address}`, {
        where: `${basename(abs)}: ${key}`,
        hint: `Give each VO-box on one host its own ${what.split(' ')[0]}; change it here or in ${f}.`,
      });
    };
    if (other.vobox.name === spec.vobox.name) clash(`name ${spec.vobox.name}`, 'vobox.name');
    if (other.vobox.network.ip === spec.vobox.network.ip && other.vobox.network.name === spec.vobox.network.name)
      clash(`ip ${spec.vobox.network.ip}`, 'vobox.network.ip');
    if (other.vobox.network.mac === spec.vobox.network.mac) clash(`mac ${spec.vobox.network.mac}`, 'vobox.network.mac');
  }
}
