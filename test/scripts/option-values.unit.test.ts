// An option value its own parser refuses (scripts/cli/options.ts: wholeNumber, seconds) is bad usage:
// exit 2 with the one-paragraph error naming the option and the fix, never a stack trace and exit 1.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../scripts/cli/main.ts';

describe('option values refused by their parser', () => {
  afterEach(() => vi.restoreAllMocks());

  it.each([
    [['fleet', 'status', 'sites/', '--concurrency', 'x'], '--concurrency'],
    [['rollout', 'sites/', '--image', 'a:b', '--canary', '-1'], '--canary'],
  ])('%j exits 2 naming %s and the fix', async (args, option) => {
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
    const code = await main(['node', 'gridforge', ...args]);
    expect(code).toBe(2);
    const text = err.join('');
    expect(text).toContain(`error: ${option}: ${option} must be a whole number`);
    expect(text).toContain('Fix: give e.g.');
    expect(text).not.toMatch(/\n\s+at /);
  });
});
