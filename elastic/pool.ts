/**
 * The elastic pool of a site: the `elastic:` block of the site file (sites/README.md "Elastic worker
 * nodes"), validated here (stacks/spec.ts only lets the key through). Errors name the file and the
 * key and say the fix. Node names are `<nodePrefix>1..<nodePrefix><maxNodes>`; node i always gets the
 * i-th address of `network.addresses` and the ((i-1) mod hosts)-th provider host, so concurrent
 * resume programs never race for an address.
 */
import { z } from 'zod';
import { UsageError } from '../base/errors.ts';
import type { SiteSpec } from '../stacks/index.ts';
import { intToIp, inSubnet, ipToInt, parseCidr } from '../stacks/net.ts';

const name = z.string().regex(/^[a-z][a-z0-9]{0,15}$/, 'expected a node name prefix like el (lowercase letters and digits)');
const absPath = z.string().regex(/^\/[A-Za-z0-9._+@/-]*$/, 'expected an absolute path (letters, digits and . _ + @ - / only)');
const hostSchema = z
  .object({
    address: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.:-]*$/, 'expected a host name or IP address'),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/).default('root'),
    identityFile: z.string().optional(),
    hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected "SHA256:<43 base64 chars>"').optional(),
    knownHosts: z.string().optional(),
    dockerSocket: absPath.default('/var/run/docker.sock'),
    connectTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();

export const poolSchema = z
  .object({
    provider: z.enum(['docker-ssh']).default('docker-ssh'),
    /** provider hosts; default: the site's own `host` */
    hosts: z.array(hostSchema).min(1).optional(),
    image: z.string({ required_error: 'the pool has no worker-node image' }).regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, 'expected an image reference like gridforge/worker-node:debian-slurm-0.1.0'),
    cpus: z.number().int().min(1).max(1024).default(1),
    memoryMb: z.number().int().min(64).default(1000),
    maxNodes: z.number().int().min(1).max(1000),
    nodePrefix: name.default('el'),
    network: z
      .object({
        /** Docker MACVLAN network on each provider host; default: vobox.network.name (the one the VO-box deploy made) */
        name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/).optional(),
        /** first-last, e.g. 10.1.2.60-10.1.2.69, inside vobox.network.subnet */
        addresses: z.string().regex(/^\d+\.\d+\.\d+\.\d+-\d+\.\d+\.\d+\.\d+$/, 'expected a range first-last like 10.1.2.60-10.1.2.69'),
      })
      .strict(),
    /** slurmctld for configless slurmd: host[:port] */
    controller: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*(:\d+)?$/, 'expected host[:port] of slurmctld, e.g. 10.1.2.10:6817'),
    /** the site's munge key on each provider host */
    mungeKey: absPath,
    /** host path bound read-only (rslave) at /cvmfs in every node */
    cvmfs: absPath.default('/cvmfs'),
    /** where the resume/suspend programs log and the node life log lives (on the controller) */
    stateDir: absPath.default('/var/lib/gridforge/elastic'),
    slurm: z
      .object({
        /** SLURM_CONF for scontrol, when not the default */
        conf: absPath.optional(),
        suspendTime: z.number().int().min(5).default(300),
        resumeTimeout: z.number().int().min(10).default(300),
        suspendTimeout: z.number().int().min(5).default(30),
        resumeRate: z.number().int().min(0).default(10),
        suspendRate: z.number().int().min(0).default(10),
        features: z.string().regex(/^[A-Za-z0-9_,]*$/).default('elastic'),
      })
      .strict()
      .default({}),
  })
  .strict();

export type PoolInput = z.infer<typeof poolSchema>;
export type ProviderHost = z.infer<typeof hostSchema>;

export interface Pool extends PoolInput {
  site: string;
  siteFile: string;
  networkName: string;
  hostsResolved: ProviderHost[];
  addresses: string[];
  nodes: string[];
}

const where = (spec: SiteSpec, key: string) => `${spec.file ?? 'site file'}: elastic${key ? `.${key}` : ''}`;

/** The pool of a site file, validated; UsageError naming the key and the fix. */
export function loadPool(spec: SiteSpec): Pool {
  if (!spec.elastic) throw new UsageError('the site file has no elastic: block', { where: spec.file ?? 'site file', hint: 'add an elastic: block (sites/example.yaml, sites/README.md "Elastic worker nodes")' });
  const r = poolSchema.safeParse(spec.elastic);
  if (!r.success) {
    const i = r.error.issues[0];
    const key = i.path.join('.');
    const hint = key === 'image' ? 'set elastic.image to the worker-node image (gridforge elastic image builds gridforge/worker-node:debian-slurm-0.1.0)' : `correct elastic.${key || '(block)'} (sites/example.yaml)`;
    throw new UsageError(i.message === 'Required' ? `elastic.${key} is missing` : i.message, { where: where(spec, key), hint });
  }
  const p = r.data;
  const net = parseCidr(spec.vobox.network.subnet)!;
  const [a, b] = p.network.addresses.split('-').map(ipToInt);
  if (a === null || b === null || b < a) throw new UsageError(`address range ${p.network.addresses} is not first-last`, { where: where(spec, 'network.addresses'), hint: 'write it as first-last, e.g. 10.1.2.60-10.1.2.69' });
  const addresses: string[] = [];
  for (let n = a; n <= b && addresses.length < 4096; n++) addresses.push(intToIp(n));
  const outside = addresses.find((ip) => !inSubnet(ipToInt(ip)!, net));
  if (outside) throw new UsageError(`address ${outside} is outside the site LAN ${spec.vobox.network.subnet}`, { where: where(spec, 'network.addresses'), hint: `use addresses inside ${spec.vobox.network.subnet}` });
  for (const [ip, what] of [[spec.vobox.network.ip, 'the VO-box'], [spec.vobox.network.gateway, 'the gateway']] as const) {
    if (addresses.includes(ip)) throw new UsageError(`address range ${p.network.addresses} includes ${ip} (${what})`, { where: where(spec, 'network.addresses'), hint: `leave ${ip} out of the range` });
  }
  if (p.maxNodes > addresses.length) {
    throw new UsageError(`maxNodes ${p.maxNodes} is more than the ${addresses.length} addresses of ${p.network.addresses}`, {
      where: where(spec, 'maxNodes'),
      hint: `lower elastic.maxNodes to ${addresses.length} or widen elastic.network.addresses to ${p.maxNodes} addresses`,
    });
  }
  const hostsResolved = p.hosts ?? [{ ...spec.host, connectTimeoutMs: spec.host.connectTimeoutMs }];
  return {
    ...p,
    site: spec.site,
    siteFile: spec.file ?? '',
    networkName: p.network.name ?? spec.vobox.network.name,
    hostsResolved,
    addresses: addresses.slice(0, p.maxNodes),
    nodes: Array.from({ length: p.maxNodes }, (_, i) => `${p.nodePrefix}${i + 1}`),
  };
}

/** The node's index (0-based) in the pool, or a UsageError naming the node. */
export function nodeIndex(pool: Pool, node: string): number {
  const i = pool.nodes.indexOf(node);
  if (i < 0) throw new UsageError(`node ${node} is not in the elastic pool of ${pool.site} (${pool.nodePrefix}1..${pool.nodePrefix}${pool.maxNodes})`, { where: node, hint: 'Slurm calls the programs with the names of the cloud nodes of `gridforge render slurm-elastic`' });
  return i;
}

export const hostlistExpr = (pool: Pool) => (pool.maxNodes === 1 ? `${pool.nodePrefix}1` : `${pool.nodePrefix}[1-${pool.maxNodes}]`);

/** Expand a Slurm hostlist (`el[1-3,5],x7`) into names. */
export function expandHostlist(expr: string): string[] {
  const out: string[] = [];
  for (const part of expr.match(/[^,[]+(\[[^\]]*\])?[^,]*/g) ?? []) {
    const m = /^([^[]*)\[([^\]]*)\](.*)$/.exec(part);
    if (!m) {
      if (part) out.push(part);
      continue;
    }
    for (const r of m[2].split(',')) {
      const [lo, hi] = r.split('-');
      const width = lo.length;
      for (let n = Number(lo); n <= Number(hi ?? lo); n++) out.push(`${m[1]}${String(n).padStart(width, '0')}${m[3]}`);
    }
  }
  if (out.some((n) => !/^[A-Za-z0-9._-]+$/.test(n))) throw new UsageError(`hostlist "${expr}" is not a Slurm host list`, { where: expr, hint: 'give node names like el1 or el[1-3]' });
  return out;
}
