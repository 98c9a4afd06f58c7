/** stacks/rollout/plan.ts: canaries first, then waves interleaved across hosts. */
import { describe, expect, it } from 'vitest';
import { interleaveByHost, planWaves } from '../../../stacks/rollout/plan.ts';

const site = (site: string, host: string, canary = false) => ({ site, host, canary });
const names = (w: { sites: { site: string }[] }[]) => w.map((x) => x.sites.map((s) => s.site));

describe('rollout wave planning', () => {
  const sites = [site('a1', 'A'), site('a2', 'A'), site('a3', 'A'), site('b1', 'B'), site('b2', 'B'), site('c1', 'C', true)];

  it('interleaves hosts round robin, keeping the order within a host', () => {
    expect(interleaveByHost(sites).map((s) => s.site)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('puts marked canaries first, tops them up from the interleaved order, then waves of --concurrency', () => {
    const w = planWaves(sites, { canary: 2, concurrency: 2 });
    expect(w.map((x) => x.kind)).toEqual(['canary', 'wave', 'wave']);
    expect(names(w)).toEqual([['c1', 'a1'], ['a2', 'b1'], ['a3', 'b2']]);
  });

  it('splits canaries by --concurrency and plans no canary wave for --canary 0', () => {
    expect(names(planWaves(sites, { canary: 3, concurrency: 2 })).slice(0, 2)).toEqual([['c1', 'a1'], ['b1']]);
    expect(planWaves(sites, { canary: 0, concurrency: 10 }).map((x) => x.kind)).toEqual(['wave']); // --canary 0 ignores the marks
    expect(planWaves([site('x', 'X')], { canary: 0, concurrency: 1 }).map((x) => x.kind)).toEqual(['wave']);
  });

  it('refuses a concurrency below 1', () => {
    expect(() => planWaves(sites, { canary: 0, concurrency: 0 })).toThrow(RangeError);
  });
});
