/** Central rollouts across sites and fleet status: the public API of stacks/rollout. */
export * from './types.ts';
export * from './driver.ts';
export { listInventory, loadInventory, type InventoryEntry, type InventorySite } from './inventory.ts';
export { planWaves, interleaveByHost } from './plan.ts';
export { globToRegExp, selectSite, splitGlobs } from './site-glob.ts';
export { DEFAULT_RECORD_DIR, listRecords, loadRecord, recordPath, saveRecord, newRolloutId } from './record-store.ts';
export { SiteLocks } from './site-lock.ts';
export { RolloutExecutor, failureCount } from './execute.ts';
export { abortRollout, DEFAULT_OPTIONS, dryRunRollout, planRollout, resumeRollout, startRollout, type DryRunSite, type RolloutResult } from './rollout.ts';
export { fleetStatus, type FleetRow } from './fleet.ts';
export { formatDryRun, formatRolloutTable, rolloutJson } from './report-table.ts';
export { renderFleetHtml, renderRolloutHtml, escapeHtml } from './report-html.ts';
