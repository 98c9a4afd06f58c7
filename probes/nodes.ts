/**
 * From stored rows to nodes: the newest result of each probe of one host, assembled while the
 * store streams them (grouped by host name), so a report over a whole Grid holds one node at a
 * time. A node's site and CE are those of its newest upload. Filters: `--site` and `--where
 * key=value` on the flattened facts (probes/result.ts flatten).
 */
import { UsageError } from '../base/errors.ts';
import { flatten, joinScalars } from './result.ts';
import type { ResultsStore } from './store.ts';

export interface Node {
  hostname: string;
  site: string;
  ce: string;
  received: number;
  /** Newest parsed result per probe. */
  probes: Record<string, Record<string, unknown>>;
}

export interface NodeFilter {
  sites?: string[];
  /** key=value conditions, all must hold. */
  where?: string[];
}

/** Parse `key=value` conditions. UsageError naming the bad one. */
export function parseWhere(where: string[] = []): [string, string][] {
  return where.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw new UsageError(`--where "${w}" is not key=value`, { where: '--where', hint: 'e.g. --where cpu.x86_64_level=2 (keys as `probe report --json` lists them)' });
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** The flattened facts of a node (probe.key -> string). */
export function factsOf(node: Node): Map<string, string> {
  const m = new Map<string, string>();
  for (const [p, v] of Object.entries(node.probes)) flatten(p, v, m);
  return m;
}

/** A fact of a node without flattening everything: `probe.a.b`. */
export function factOf(node: Node, key: string): string | undefined {
  const [probe, ...rest] = key.split('.');
  let v: unknown = node.probes[probe];
  if (v === undefined) return undefined;
  for (let i = 0; i < rest.length; i++) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const obj = v as Record<string, unknown>;
    // keys may hold dots themselves: take the longest key that matches
    let j = rest.length;
    while (j > i && !(rest.slice(i, j).join('.') in obj)) j--;
    if (j === i) return undefined;
    v = obj[rest.slice(i, j).join('.')];
    i = j - 1;
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.every((x) => x === null || typeof x !== 'object') ? joinScalars(v) : undefined;
  if (typeof v === 'object') return undefined;
  return String(v);
}

/** Call `fn` for each node that passes the filter, one node in memory at a time. */
export function forEachNode(store: ResultsStore, filter: NodeFilter, fn: (node: Node) => void): void {
  const where = parseWhere(filter.where);
  const sites = filter.sites?.length ? new Set(filter.sites) : undefined;
  let cur: Node | undefined;
  const flush = () => {
    if (!cur) return;
    const n = cur;
    cur = undefined;
    if (sites && !sites.has(n.site)) return;
    for (const [k, v] of where) if (factOf(n, k) !== v) return;
    fn(n);
  };
  for (const r of store.latest()) {
    if (!cur || cur.hostname !== r.hostname) {
      flush();
      cur = { hostname: r.hostname, site: r.site, ce: r.ce, received: r.received, probes: {} };
    }
    if (r.received >= cur.received) Object.assign(cur, { site: r.site, ce: r.ce, received: r.received });
    cur.probes[r.probe] = JSON.parse(r.doc) as Record<string, unknown>;
  }
  flush();
}
