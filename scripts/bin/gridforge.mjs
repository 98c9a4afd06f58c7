#!/usr/bin/env node
// gridforge executable. Runs the JavaScript that scripts/build.mjs compiled into `.build/` (setup
// builds it) while that build matches the sources (scripts/build-stamp.mjs), and otherwise the
// TypeScript sources through tsx, which compiles them at every start (~3x slower; figures in
// scripts/README.md). A stale build never runs. GRIDFORGE_TSX=1 forces the sources.
import { fileURLToPath } from 'node:url';
import { BUILD_DIR, buildIsCurrent } from '../build-stamp.mjs';

const ROOT = new URL('../../', import.meta.url);

let entry;
if (process.env.GRIDFORGE_TSX !== '1' && buildIsCurrent(fileURLToPath(ROOT))) {
  entry = new URL(`${BUILD_DIR}/scripts/cli/main.js`, ROOT).href;
  // GRIDFORGE_DEBUG=1 prints stacks (scripts/cli/command.ts): through the build's maps, at the .ts lines.
  if (process.env.GRIDFORGE_DEBUG === '1') process.setSourceMapsEnabled(true);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  entry = new URL('scripts/cli/main.ts', ROOT).href;
}
const { main } = await import(entry);
process.exitCode = await main(process.argv);
