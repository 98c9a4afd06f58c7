/**
 * `gridforge probe report`: per site and CE, how many nodes have each value of a fact (counts and
 * shares), over the newest result of every node (probes/nodes.ts). Streams the store, so a Grid's
 * worth of results costs one node of memory plus the counters. Also the plain-text table.
 */
import { formatTable } from '../base/text-table.ts';
import { factOf, forEachNode, type NodeFilter } from './nodes.ts';
import type { ResultsStore } from './store.ts';

/** What the report counts unless told otherwise (`--key`). */
export const DEFAULT_REPORT_KEYS = [
  'os.name', 'os.cgroup', 'cpu.arch', 'cpu.x86_64_level', 'memory.ram_per_core_mb', 'userns.enabled', 'userns.apparmor_restricted',
  'container.setuid_runtime', 'container.run_ok', 'cvmfs.mounted', 'gpu.has_gpu', 'network.ipv4.reached', 'network.ipv6.reached',
];
/** The value counted for a node that has no such fact (no result from that probe, or no key). */
export const NO_VALUE = '(none)';

/** value -> node count, per key. */
export type ValueCounts = Record<string, Record<string, number>>;

export interface CeReport { ce: string; nodes: number; values: ValueCounts }
export interface SiteReport { site: string; nodes: number; values: ValueCounts; ces: CeReport[] }
export interface Report {
  generated: string;
  filter: { sites: string[]; where: string[] };
  keys: string[];
  nodes: number;
  values: ValueCounts;
  sites: SiteReport[];
}

function emptyCounts(keys: string[]): ValueCounts {
  return Object.fromEntries(keys.map((k) => [k, {}]));
}

function add(counts: ValueCounts, facts: string[], keys: string[]): void {
  for (let i = 0; i < keys.length; i++) {
    const c = counts[keys[i]];
    c[facts[i]] = (c[facts[i]] ?? 0) + 1;
  }
}

/** Count the nodes of the store that pass `filter`, per site, CE and value of each key. */
export function buildReport(store: ResultsStore, filter: NodeFilter = {}, keys: string[] = DEFAULT_REPORT_KEYS): Report {
  const total = emptyCounts(keys);
  const sites = new Map<string, { nodes: number; values: ValueCounts; ces: Map<string, CeReport> }>();
  let nodes = 0;
  forEachNode(store, filter, (n) => {
    const facts = keys.map((k) => factOf(n, k) ?? NO_VALUE);
    nodes++;
    add(total, facts, keys);
    let s = sites.get(n.site);
    if (!s) sites.set(n.site, (s = { nodes: 0, values: emptyCounts(keys), ces: new Map() }));
    s.nodes++;
    add(s.values, facts, keys);
    let c = s.ces.get(n.ce);
    if (!c) s.ces.set(n.ce, (c = { ce: n.ce, nodes: 0, values: emptyCounts(keys) }));
    c.nodes++;
    add(c.values, facts, keys);
  });
  return {
    generated: new Date().toISOString(),
    filter: { sites: filter.sites ?? [], where: filter.where ?? [] },
    keys,
    nodes,
    values: total,
    sites: [...sites.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([site, s]) => ({ site, nodes: s.nodes, values: s.values, ces: [...s.ces.values()].sort((a, b) => a.ce.localeCompare(b.ce)) })),
  };
}

/** A share as a percentage with one decimal. */
export function share(n: number, of: number): string {
  return of === 0 ? '0.0%' : `${((100 * n) / of).toFixed(1)}%`;
}

/** Values of a key, most nodes first. */
export function sortedValues(c: Record<string, number>): [string, number][] {
  return Object.entries(c).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** The plain-text report: one table per key, a row per (site, CE, value) and the totals first. */
export function formatReport(r: Report): string {
  const out: string[] = [`${r.nodes} nodes in ${r.sites.length} sites${r.filter.sites.length ? ` (sites: ${r.filter.sites.join(', ')})` : ''}${r.filter.where.length ? ` where ${r.filter.where.join(' and ')}` : ''}`];
  for (const key of r.keys) {
    const rows: (string | number)[][] = [];
    for (const [v, n] of sortedValues(r.values[key])) rows.push(['ALL', '', r.nodes, v, n, share(n, r.nodes)]);
    for (const s of r.sites) {
      for (const [v, n] of sortedValues(s.values[key])) rows.push([s.site, '', s.nodes, v, n, share(n, s.nodes)]);
      if (s.ces.length > 1 || (s.ces.length === 1 && s.ces[0].ce !== s.site)) {
        for (const c of s.ces) for (const [v, n] of sortedValues(c.values[key])) rows.push([s.site, c.ce, c.nodes, v, n, share(n, c.nodes)]);
      }
    }
    out.push('', key, formatTable(['site', 'ce', 'nodes', 'value', 'count', 'share'], rows));
  }
  return out.join('\n');
}
