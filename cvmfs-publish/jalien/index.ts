/** Public API of the release capability (JAliEn, Java runtime, JobAgent startup, publish on tag). */
export { JALIEN_VERSION_RE, validateJalienVersion, validateArch } from './version.ts';
export { releaseJalien, setDefaultVersion, readDefault, listVersions, planJalienRelease, type ReleaseJalienOptions, type ReleaseJalienResult, type SetDefaultResult } from './publish.ts';
export { renderJobAgentStartup, type JobAgentStartupInput } from './jobagent-startup.ts';
export { releaseTagOnHead, planRelease, runStep, type GitRelease, type ReleasePlan, type ReleasePlanInput, type ReleaseStep } from './from-git.ts';
export { packageDir, modulefilePath, defaultFilePath, ALIENV_PATH } from './content.ts';
export { assembleJava32, discardAssembly, validateMountPrefix, JDK_PARENT, BUNDLED_LIB_DIR, type AssembledRuntime, type AssembleOptions } from '../java32/assemble.ts';
export { publishJava32, JDK_LATEST, type PublishJava32Result } from '../java32/publish.ts';
