/**
 * The deploy engine. Site spec -> settings (one function for both engines) -> resources
 * (resources/) -> preflight, plan, deploy (with health and restore), status, logs, destroy over SSH.
 */
export { loadSiteSpec, parseSiteSpec, siteSpecSchema, SERVICES, type SiteSpec, type Service } from './spec.ts';
export { deriveSettings, type DeploySettings, type HostFacts } from './settings.ts';
export { planSite, deploySite, restoreSite, destroySite } from './deploy.ts';
export { siteStatus, siteLogs, type SiteStatus } from './status.ts';
export type { DeployOptions, DeployResult, PreviousState, DestroyResult } from './deploy.ts';
export type { Plan, Change, Overrides } from './plan.ts';
export { computePlan, formatPlan } from './plan.ts';
export { preflight, type PreflightRow } from './preflight.ts';
export { containerCreateBody, probePrivileged } from './resources/container.ts';
export { networkCreateBody } from './resources/network.ts';
