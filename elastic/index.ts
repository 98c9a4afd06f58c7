/** Public API of the elastic capability (scripts/cli/elastic.ts, `render slurm-elastic`, `site check`, the testbed's --elastic). */
export { loadPool, expandHostlist, hostlistExpr, type Pool } from './pool.ts';
export type { Provider, NodeSpec, NodeResource } from './provider.ts';
export { providerFor } from './providers/index.ts';
export { resumeNodes, type ResumeResult } from './resume.ts';
export { suspendNodes, type SuspendResult } from './suspend.ts';
export { reap, zombieReason, type ReapResult } from './reap.ts';
export { elasticStatus, formatElasticStatus, type ElasticStatus } from './status.ts';
export { renderSlurmElastic, installPrograms, programPath } from './slurm-conf.ts';
export { readLife, lifeLogPath, type LifeRecord } from './life-log.ts';
export { setFault, type Fault } from './faults.ts';
export { checkPool, type CheckRow } from './check.ts';
export { buildWorkerNodeImage, renderWorkerNodeDockerfile, WORKER_NODE_IMAGE } from './image.ts';
export { fleetElastic, formatFleetElastic, type FleetElastic } from './fleet.ts';
