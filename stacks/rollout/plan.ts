/**
 * The wave planner: canary sites first (one wave), then the remaining sites in waves of at most
 * `concurrency` sites. Canaries are the sites marked `canary: true` in the inventory, topped up
 * with the first sites of the host-interleaved order (first site of each host, in inventory
 * order) until there are `canary` of them. Non-canary sites are
 * interleaved across hosts (round robin, inventory order kept per host) so that a wave touches as
 * many different hosts as possible and VO-boxes sharing a host land in different waves.
 */
export interface PlannableSite {
  site: string;
  host: string;
  canary: boolean;
}

export interface PlannedWave<S> {
  index: number;
  kind: 'canary' | 'wave';
  sites: S[];
}

export function planWaves<S extends PlannableSite>(sites: S[], opts: { canary: number; concurrency: number }): PlannedWave<S>[] {
  if (opts.concurrency < 1) throw new RangeError('concurrency must be at least 1');
  const marked = sites.filter((s) => s.canary);
  const canaries = marked.slice(0, Math.max(opts.canary, 0));
  // Top up from the host-interleaved order: canaries on different hosts catch more.
  for (const s of interleaveByHost(sites)) {
    if (canaries.length >= opts.canary) break;
    if (!canaries.includes(s)) canaries.push(s);
  }
  const rest = sites.filter((s) => !canaries.includes(s));

  const waves: PlannedWave<S>[] = [];
  // Canaries: one wave, but never more at once than --concurrency allows.
  for (let i = 0; i < canaries.length; i += opts.concurrency) {
    waves.push({ index: waves.length, kind: 'canary', sites: canaries.slice(i, i + opts.concurrency) });
  }
  const ordered = interleaveByHost(rest);
  for (let i = 0; i < ordered.length; i += opts.concurrency) {
    waves.push({ index: waves.length, kind: 'wave', sites: ordered.slice(i, i + opts.concurrency) });
  }
  return waves;
}

/** Round robin over hosts, in order of each host's first appearance; order within a host kept. */
export function interleaveByHost<S extends PlannableSite>(sites: S[]): S[] {
  const queues = new Map<string, S[]>();
  for (const s of sites) {
    const q = queues.get(s.host);
    if (q) q.push(s);
    else queues.set(s.host, [s]);
  }
  const out: S[] = [];
  const lists = [...queues.values()];
  for (let round = 0; out.length < sites.length; round++) {
    for (const q of lists) if (round < q.length) out.push(q[round]);
  }
  return out;
}
