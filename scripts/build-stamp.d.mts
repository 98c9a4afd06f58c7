// Types of build-stamp.mjs for the TypeScript that imports it (tests and the startup benchmark).
export declare const SOURCE_DIRS: string[];
export declare const PROJECT_FILES: string[];
export declare const BUILD_DIR: string;
export declare const STAMP_FILE: string;
export declare function makeStamp(root: string, files: string[], dirs: string[]): unknown;
export declare function buildIsCurrent(root: string): boolean;
