/**
 * Public API of the probes capability (probes/README.md): Site Sonar probes, their runner and
 * results endpoint, the report, and the readiness rules of an OS migration.
 */
export { bundledProbesDir, listProbes, probesVersion, SITESONAR_PATH, STANDARD_PROBES } from './scripts.ts';
export { publishProbes, type PublishProbesOptions, type PublishProbesResult } from './publish.ts';
export { runProbes, runProbe, uploadResults, PROBE_TIMEOUT_MS, type RunOptions } from './runner.ts';
export { parseUpload, validateUpload, parseProbeOutput, flatten, MAX_UPLOAD_BYTES, UPLOAD_SCHEMA, type Upload, type ProbeResult } from './result.ts';
export { openResultsStore, ResultsStore } from './store.ts';
export { serveResults, type ResultsServer } from './server.ts';
export { forEachNode, parseWhere, type Node, type NodeFilter } from './nodes.ts';
export { buildReport, formatReport, DEFAULT_REPORT_KEYS, type Report } from './report.ts';
export { renderReportHtml } from './report-html.ts';
export { elfInfo } from './elf.ts';
export { readImageRequirements, type ImageRequirements } from './image.ts';
export { assessReadiness, judgeNode, type Readiness } from './readiness.ts';
export { migrateCheck, checkLinkReadiness, blockingSites, linkTargetPath, parsePercent } from './migrate.ts';
