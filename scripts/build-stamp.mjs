// The stamp of the compiled build in `.build/` (written by scripts/build.mjs) and the start-up check
// that the build still matches the sources (scripts/bin/gridforge.mjs). Plain JS, builtins only: it
// runs before anything is compiled and on every start, where it costs ~3-7 ms (one stat per compiled
// source and per directory of the build's plan, ~170 stats).
//
// A file entry is [path, mtimeMs, size], a directory entry [path, mtimeMs]: editing a source changes
// its mtime; adding, removing or renaming a file changes its directory's mtime.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** The folders compiled into the build: every source folder the CLI runs from. */
export const SOURCE_DIRS = ['base', 'images', 'templates', 'cvmfs-publish', 'release', 'stacks', 'elastic', 'testbed', 'probes', 'scripts'];
/** What a private copy of the project needs to build and run the CLI (tests and the startup benchmark). */
export const PROJECT_FILES = [...SOURCE_DIRS, 'package.json', 'tsconfig.json', 'gridforge.yaml'];
export const BUILD_DIR = '.build';
export const STAMP_FILE = 'stamp.json';
const STAMP_VERSION = 1;

/** The stamp of `files` and `dirs` (paths relative to `root`) as they are now. */
export function makeStamp(root, files, dirs) {
  const stat = (rel) => statSync(path.join(root, rel));
  return {
    version: STAMP_VERSION,
    files: files.map((rel) => { const st = stat(rel); return [rel, st.mtimeMs, st.size]; }),
    dirs: dirs.map((rel) => [rel, stat(rel).mtimeMs]),
  };
}

/** Whether `root`/.build/ exists and its stamp matches the sources under `root` now. */
export function buildIsCurrent(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(path.join(root, BUILD_DIR, STAMP_FILE), 'utf8'));
  } catch {
    return false; // never built, or being swapped in right now
  }
  if (stamp?.version !== STAMP_VERSION) return false;
  try {
    for (const [rel, mtime, size] of stamp.files) {
      const st = statSync(path.join(root, rel));
      if (st.mtimeMs !== mtime || st.size !== size) return false;
    }
    for (const [rel, mtime] of stamp.dirs) if (statSync(path.join(root, rel)).mtimeMs !== mtime) return false;
  } catch {
    return false; // a source was removed
  }
  return true;
}
