/**
 * The rules that say whether a node can run a job image (probes/README.md "Readiness rules"):
 *   1. the node has a successful result of every probe the rules read (os, cpu, userns, container, cvmfs);
 *   2. its CPU architecture is the image's (cpu.arch);
 *   3. on x86-64, its microarchitecture level reaches the image's (cpu.x86_64_level, probes/image.ts);
 *   4. an unprivileged job can make a user namespace (userns.enabled and not
 *      userns.apparmor_restricted) OR a setuid runtime is installed (container.setuid_runtime);
 *   5. the container probe's real run of the current job image with the JobAgent's binds worked
 *      (container.run_ok: the runtime, the binds and the kernel work on the node);
 *   6. the repository is mounted (cvmfs.mounted holds its name);
 *   7. the image holds every bind destination the JobAgent uses (/cvmfs, /workdir): when one is
 *      missing no node can run it.
 * Every rule that fails is a reason, with a code the site summary counts by.
 */
import { forEachNode, type Node, type NodeFilter } from './nodes.ts';
import type { ImageRequirements } from './image.ts';
import type { ResultsStore } from './store.ts';

export const RULE_PROBES = ['os', 'cpu', 'userns', 'container', 'cvmfs'] as const;

export interface Reason {
  code: string;
  detail: string;
}

export interface NodeVerdict {
  hostname: string;
  site: string;
  ce: string;
  ready: boolean;
  reasons: Reason[];
}

export interface SiteReadiness {
  site: string;
  nodes: number;
  ready: number;
  percent: number;
  /** reason code -> nodes */
  reasons: Record<string, number>;
}

export interface Readiness {
  image: ImageRequirements;
  repository: string;
  nodes: number;
  ready: number;
  percent: number;
  /** Reasons that hold for every node (the image itself). */
  imageProblems: Reason[];
  sites: SiteReadiness[];
  /** Every node that cannot run the image, with why. */
  notReady: NodeVerdict[];
}

const str = (v: unknown) => (v === undefined || v === null ? 'unknown' : String(v));

/** What the image itself lacks (rule 7). */
export function imageProblems(req: ImageRequirements): Reason[] {
  return Object.entries(req.bindPoints)
    .filter(([, ok]) => !ok)
    .map(([b]) => ({ code: `image-lacks-${b.slice(1)}`, detail: `the image has no ${b} directory, the bind destination the JobAgent needs (add it to the image: \`gridforge image sandbox --bind-point ${b}\`)` }));
}

/** The reasons a node cannot run the image (empty: it can). */
export function judgeNode(n: Node, req: ImageRequirements, repository: string): Reason[] {
  const reasons: Reason[] = [...imageProblems(req)];
  for (const p of RULE_PROBES) {
    const r = n.probes[p];
    if (!r) reasons.push({ code: `no-${p}-result`, detail: `no ${p} probe result from this node` });
    else if (r.TIMED_OUT === true || r.EXITCODE !== 0) reasons.push({ code: `${p}-probe-failed`, detail: `the ${p} probe failed (exit ${str(r.EXITCODE)}${r.TIMED_OUT ? ', timed out' : ''}${r.ERROR ? `: ${str(r.ERROR)}` : ''})` });
  }
  const cpu = n.probes.cpu;
  const userns = n.probes.userns;
  const container = n.probes.container;
  const cvmfs = n.probes.cvmfs;
  if (cpu && req.arch && cpu.arch !== req.arch) reasons.push({ code: 'arch', detail: `CPU architecture ${str(cpu.arch)}, the image is ${req.arch}` });
  else if (cpu && req.arch === 'x86_64' && req.x86_64_level > 1) {
    const level = typeof cpu.x86_64_level === 'number' ? cpu.x86_64_level : 0;
    if (level < req.x86_64_level) reasons.push({ code: 'cpu-level', detail: `CPU reaches x86-64-v${level}, the image needs x86-64-v${req.x86_64_level}${cpu.missing_for_next_level ? ` (missing: ${str(cpu.missing_for_next_level)})` : ''}` });
  }
  if (userns && container) {
    const setuid = container.setuid_runtime === true;
    if (!setuid && userns.enabled !== true) reasons.push({ code: 'userns-disabled', detail: `user namespaces are disabled (${str(userns.reason)}) and no setuid runtime is installed` });
    else if (!setuid && userns.apparmor_restricted === true) reasons.push({ code: 'userns-apparmor', detail: 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1) and no setuid runtime is installed' });
  }
  if (container && container.run_ok !== true) reasons.push({ code: 'container-run', detail: `the container probe could not run the job image: ${str(container.run_error)}` });
  if (cvmfs) {
    const mounted = Array.isArray(cvmfs.mounted) ? cvmfs.mounted.map(String) : [];
    if (!mounted.includes(repository)) reasons.push({ code: 'cvmfs-missing', detail: `${repository} is not mounted under ${str(cvmfs.root)}` });
  }
  return reasons;
}

/** Judge every node of the store that passes `filter`. */
export function assessReadiness(store: ResultsStore, req: ImageRequirements, repository: string, filter: NodeFilter = {}): Readiness {
  const sites = new Map<string, SiteReadiness>();
  const notReady: NodeVerdict[] = [];
  let nodes = 0;
  let ready = 0;
  forEachNode(store, filter, (n) => {
    const reasons = judgeNode(n, req, repository);
    nodes++;
    let s = sites.get(n.site);
    if (!s) sites.set(n.site, (s = { site: n.site, nodes: 0, ready: 0, percent: 0, reasons: {} }));
    s.nodes++;
    if (reasons.length === 0) {
      ready++;
      s.ready++;
    } else {
      notReady.push({ hostname: n.hostname, site: n.site, ce: n.ce, ready: false, reasons });
      for (const c of new Set(reasons.map((r) => r.code))) s.reasons[c] = (s.reasons[c] ?? 0) + 1;
    }
  });
  const pct = (a: number, b: number) => (b === 0 ? 0 : Math.round((1000 * a) / b) / 10);
  for (const s of sites.values()) s.percent = pct(s.ready, s.nodes);
  return {
    image: req,
    repository,
    nodes,
    ready,
    percent: pct(ready, nodes),
    imageProblems: imageProblems(req),
    sites: [...sites.values()].sort((a, b) => a.percent - b.percent || b.nodes - a.nodes || a.site.localeCompare(b.site)),
    notReady,
  };
}
