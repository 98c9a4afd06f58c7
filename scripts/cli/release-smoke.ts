/**
 * `gridforge release --from-git --smoke`: the smoke step the release workflow runs against the
 * candidate revision before JAliEn becomes the default (release/from-git.ts `smoke`). Uses the
 * testbed that is up (on the same repository), or brings one up for the run and takes it down again.
 */
import { resolve } from 'node:path';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { destroyTestbed, formatSmokeReport, testbedSmoke, testbedStatus, testbedUp } from '../../testbed/index.ts';

export function releaseSmoke(say: (line: string) => void, jobs = 2): (c: { version: string; tag: string; repoDir: string }) => Promise<void> {
  return async ({ version, tag, repoDir }) => {
    const st = await testbedStatus();
    const own = !st.up;
    if (st.up && resolve(st.state!.repo!.dir) !== resolve(repoDir)) {
      throw new UsageError(`the testbed that is up serves ${st.state!.repo!.dir}, not ${repoDir}`, { hint: 'run `gridforge testbed down` (release --smoke then brings up its own) or release into the testbed\'s repository' });
    }
    if (own) await testbedUp({ repo: repoDir, tag, onProgress: say });
    try {
      const r = await testbedSmoke({ jobs, tag, jalienVersion: version, onProgress: say });
      const report = formatSmokeReport(r).trimEnd();
      if (!r.ok) {
        // The whole report (failing step, reason, log tail) goes with the error, so it is printed even with GRIDFORGE_QUIET.
        throw new GridforgeError(`smoke jobs against ${tag} failed, so JAliEn ${version} was NOT made the default (the candidate stays published and tagged ${tag})`, {
          detail: report,
          hint: 'fix the release and tag a new build number; `gridforge testbed smoke --tag <tag>` reruns the jobs',
        });
      }
      for (const line of report.split('\n')) say(`smoke: ${line}`);
    } finally {
      if (own) await destroyTestbed();
    }
  };
}
