#!/usr/bin/env node
// Compiles the TypeScript sources once into `.build/` so `gridforge` starts without tsx compiling them
// at every start; scripts/bin/gridforge.mjs runs the build only while it matches the sources
// (scripts/build-stamp.mjs). Plain JS so it runs before anything is compiled. setup.sh runs it:
//   node scripts/build.mjs [--force]     (without --force, a build that is still current is kept)
//
// Layout: `.build/<dir>/x.js` for every `<dir>/x.ts`, relative `.ts` import specifiers rewritten to
// `.js`; every other file is a relative symlink to its source (workers `.mjs`, templates, package
// lists, package.json), so paths the code builds from `import.meta.url` (`new URL('../templates/',
// import.meta.url)`, `new Worker(new URL('./x.mjs', import.meta.url))`) land where they do in the
// sources. A directory holding no `.ts` at any depth is one symlink.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { BUILD_DIR, SOURCE_DIRS, STAMP_FILE, buildIsCurrent, makeStamp } from './build-stamp.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Not part of the CLI: benchmarks run through tsx (`node --import tsx scripts/bench/x.ts`) and import test/.
const EXCLUDE = new Set(['scripts/bench']);
// Files whose change makes every output stale: compiler options, module type, this compiler.
const ROOT_INPUTS = ['tsconfig.json', 'package.json', 'scripts/build.mjs', 'scripts/build-stamp.mjs'];

const isTs = (name) => name.endsWith('.ts') && !/\.d\.[mc]?ts$/.test(name);
const isTypeOnly = (name) => /\.d\.[mc]?ts$/.test(name);

/** Whether `dir` (absolute) holds a `.ts` source at any depth. */
function holdsTs(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() ? holdsTs(path.join(dir, e.name)) : isTs(e.name)) return true;
  }
  return false;
}

/** Walks the source dirs: .ts files to compile, files and whole directories to link, dirs to stamp. */
function plan(root) {
  const out = { compile: [], link: [], dirs: [] };
  const visit = (rel, isDir, name) => {
    if (name.startsWith('.') || name === 'node_modules' || EXCLUDE.has(rel)) return;
    if (isDir && holdsTs(path.join(root, rel))) walk(rel);
    else if (isDir || !isTypeOnly(name)) (isTs(name) ? out.compile : out.link).push(rel);
  };
  const walk = (rel) => {
    out.dirs.push(rel);
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) visit(path.join(rel, e.name), e.isDirectory(), e.name);
  };
  for (const d of SOURCE_DIRS) if (fs.existsSync(path.join(root, d))) visit(d, true, d);
  return out;
}

// Relative specifiers in static imports/exports and dynamic import() of esbuild's output (which
// always prints double quotes): `from "./x.ts"`, `import "./x.ts"`, `import("./x.ts")`.
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(?\s*)"(\.{1,2}\/[^"]*)"/g;

const inBuild = (spec) => (spec.endsWith('.ts') ? `${spec.slice(0, -3)}.js` : spec);
const rewriteSpecifiers = (code) => code.replace(SPECIFIER, (m, lead, spec) => `${lead}"${inBuild(spec)}"`);

/** Every relative specifier of `source` (compiled to `file` in the build) that names nothing there. */
function danglingSpecifiers(source, file) {
  return [...source.matchAll(SPECIFIER)].map((m) => m[2]).filter((spec) => !fs.existsSync(path.resolve(path.dirname(file), inBuild(spec))));
}

// esbuild is tsx's own compiler (tsx depends on it): resolved through tsx so it is the one the
// development loop uses, wherever npm placed it, without a second copy in package.json.
const loadEsbuild = () => createRequire(createRequire(import.meta.url).resolve('tsx/package.json'))('esbuild');

async function compile(esbuild, root, rel, tsconfigRaw) {
  const out = rel.replace(/\.ts$/, '.js');
  // The map names its source relative to itself: `node --enable-source-maps` traces point at the .ts.
  const sourcefile = path.relative(path.dirname(path.join(BUILD_DIR, out)), rel);
  const src = fs.readFileSync(path.join(root, rel), 'utf8');
  const r = await esbuild.transform(src, { loader: 'ts', format: 'esm', target: 'node20', tsconfigRaw, sourcefile, sourcemap: 'external' });
  return { rel: out, source: r.code, code: rewriteSpecifiers(r.code), map: r.map };
}

/** Builds into a fresh directory beside `.build`, checks it, then swaps it in. */
export async function build(root = ROOT) {
  const p = plan(root);
  const tmp = fs.mkdtempSync(path.join(root, `${BUILD_DIR}.tmp-`));
  try {
    fs.chmodSync(tmp, 0o755); // readable like the sources (tests run the CLI as an unprivileged user)
    // Stamp before reading: a source edited during the build leaves a stamp that no longer matches.
    const inputs = ROOT_INPUTS.filter((f) => fs.existsSync(path.join(root, f)));
    const stamp = makeStamp(root, [...inputs, ...p.compile], p.dirs);
    const tsconfigRaw = { compilerOptions: JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.json'), 'utf8')).compilerOptions ?? {} };
    for (const d of p.dirs) fs.mkdirSync(path.join(tmp, d), { recursive: true });
    for (const l of [...p.link, 'package.json']) {
      const to = path.join(tmp, l);
      fs.symlinkSync(path.relative(path.dirname(to), path.join(root, l)), to);
    }
    const esbuild = loadEsbuild();
    const outputs = await Promise.all(p.compile.map((rel) => compile(esbuild, root, rel, tsconfigRaw)));
    for (const o of outputs) {
      const file = path.join(tmp, o.rel);
      fs.writeFileSync(file, `${o.code}//# sourceMappingURL=${path.basename(file)}.map\n`);
      fs.writeFileSync(`${file}.map`, o.map);
    }
    const problems = outputs.flatMap((o) => danglingSpecifiers(o.source, path.join(tmp, o.rel))
      .map((spec) => `${o.rel.replace(/\.js$/, '.ts')}: import "${spec}" names no file in the build`));
    if (problems.length) throw new Error(`build: failed, nothing changed in ${BUILD_DIR}/:\n  ${problems.join('\n  ')}`);
    fs.writeFileSync(path.join(tmp, STAMP_FILE), JSON.stringify(stamp));
    swapIn(root, tmp);
    return { compiled: outputs.length, linked: p.link.length };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Replaces `.build` by `tmp`; a CLI starting in between finds no stamp and runs the sources. Another
 * build swapping in at the same moment (two setups) makes the rename fail with ENOTEMPTY: try again.
 */
function swapIn(root, tmp) {
  const dest = path.join(root, BUILD_DIR);
  for (let attempt = 1; ; attempt++) {
    const old = `${tmp}.old${attempt}`;
    let moved = false;
    try {
      fs.renameSync(dest, old);
      moved = true;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
    try {
      fs.renameSync(tmp, dest);
      return;
    } catch (err) {
      if (!['ENOTEMPTY', 'EEXIST'].includes(err.code) || attempt >= 5) throw err;
    } finally {
      if (moved) fs.rmSync(old, { recursive: true, force: true });
    }
  }
}

async function cli(argv) {
  const t0 = performance.now();
  if (!argv.includes('--force') && buildIsCurrent(ROOT)) {
    console.error(`build: ${BUILD_DIR}/ is up to date`);
    return;
  }
  const r = await build();
  console.error(`build: ${r.compiled} TypeScript files compiled into ${BUILD_DIR}/, ${r.linked} files/dirs linked (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((err) => { console.error(err.message); process.exitCode = 1; });
}
