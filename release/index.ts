/** Public API of the release capability (JAliEn, Java runtime, JobAgent startup, publish on tag) for the CLI. */
export { JALIEN_VERSION_RE, validateJalienVersion, validateArch } from './jalien/version.ts';
export { releaseJalien, setDefaultVersion, readDefault, listVersions, planJalienRelease, type ReleaseJalienOptions, type ReleaseJalienResult, type SetDefaultResult } from './jalien/publish.ts';
export { renderJobAgentStartup, type JobAgentStartupInput } from './jalien/jobagent-startup.ts';
export { packageDir, modulefilePath, defaultFilePath, ALIENV_PATH } from './jalien/content.ts';
export { releaseTagOnHead, planRelease, runStep, type GitRelease, type ReleasePlan, type ReleasePlanInput, type ReleaseStep } from './from-git-plan.ts';
export { releaseFromGit, type FromGitConfig, type FromGitOptions, type FromGitResult } from './from-git.ts';
export { assembleJava32, discardAssembly, validateMountPrefix, JDK_PARENT, BUNDLED_LIB_DIR, type AssembledRuntime, type AssembleOptions } from './java32/assemble.ts';
export { publishJava32, JDK_LATEST, type PublishJava32Result } from './java32/publish.ts';
export { releaseJava32, type ReleaseJava32Options, type ReleaseJava32Result } from './java32/release-java32.ts';
export { repoDirOf, archOf, mountPrefixOf, type ReleaseTargetsConfig } from './targets.ts';
export { ReleaseSchema, DEFAULT_RELEASE, type ReleaseConfig } from './config.ts';
