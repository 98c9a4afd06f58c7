/**
 * The testbed with the stock cvmfs client (testbed/repo-mount.ts): when `cvmfs2` is on PATH or in
 * $GRIDFORGE_CVMFS_BIN (found as test/support/stock-cvmfs.ts finds it for the other stock-tool
 * checks), every worker node mounts the
 * repository served by `gridforge repo serve` at /cvmfs/<name> with it, pinned to the tag, and a smoke
 * job runs from that FUSE mount. Skipped (said so in the output) where no stock client exists.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyTestbed, testbedDir, testbedSmoke, testbedUp } from '../../testbed/index.ts';
import { hostExec } from '../../testbed/nshost.ts';
import { JALIEN, REPO_NAME, leftovers, smokeRepo } from './helpers.ts';
import { findStockCvmfs, skipNote } from '../support/stock-cvmfs.ts';

const stock = findStockCvmfs();
const bin = stock ? dirname(stock.cvmfs2) : undefined;
if (!bin) skipNote('the testbed mounting the served repository with cvmfs2');
const PREFIX = 'gftc';
let work: string | undefined;

afterAll(async () => {
  await destroyTestbed(PREFIX);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!bin)('testbed with the stock cvmfs client', () => {
  it('mounts the served repository with cvmfs2 on the worker node, pinned to the tag, and a smoke job runs from it', async () => {
    process.env.GRIDFORGE_CVMFS_BIN = bin;
    work = mkdtempSync(join(tmpdir(), 'gftb-cvmfs-'));
    const repo = await smokeRepo(work);
    const up = await testbedUp({ repo, workers: 1, prefix: PREFIX, tag: 'smoke-ready', voboxImage: false });
    expect(up.cvmfs).toBe('cvmfs2');
    const wn = up.state.hosts.find((h) => h.role === 'worker')!;
    const m = await hostExec(wn, `grep ' /cvmfs/${REPO_NAME} ' /proc/self/mounts`);
    expect(m.stdout).toMatch(new RegExp(`^cvmfs2 /cvmfs/${REPO_NAME.replace(/\./g, '\\.')} fuse`));
    const r = await testbedSmoke({ prefix: PREFIX, jobs: 1, timeoutSeconds: 60 });
    expect(r.ok, JSON.stringify(r.jobs[0])).toBe(true);
    expect(r.cvmfs).toBe('cvmfs2');
    expect(r.jobs[0].output).toContain(`JAliEn ${JALIEN} (module default)`);
    await destroyTestbed(PREFIX);
    expect(await leftovers(PREFIX, testbedDir(PREFIX))).toEqual([]);
  }, 150_000);
});
