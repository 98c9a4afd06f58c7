// Paths every suite needs, spelled once: the repository root and the gridforge executable.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO_ROOT, 'scripts', 'bin', 'gridforge.mjs');
