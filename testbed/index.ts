/** Public API of the testbed capability for the CLI (scripts/cli/testbed.ts) and the release workflow's smoke step. */
export { testbedUp, type UpOptions, type UpResult } from './up.ts';
export { destroyTestbed, type DownResult } from './down.ts';
export { testbedStatus, type StatusResult } from './status.ts';
export { testbedSmoke, type SmokeOptions, type SmokeResult, type SmokeJob } from './smoke.ts';
export { formatSmokeReport } from './report.ts';
export { buildAgentJar } from './agent-jar.ts';
export { breakCvmfs, repairCvmfs, killSlurmd, restartSlurmd, type CvmfsFault } from './faults.ts';
export { readState, testbedDir, DEFAULT_PREFIX, type TestbedState } from './state.ts';
