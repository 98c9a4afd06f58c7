/**
 * The compiled CLI (scripts/build.mjs → .build/, run by scripts/bin/gridforge.mjs while it matches
 * the sources, scripts/build-stamp.mjs): it runs when current; any edit, added file or
 * GRIDFORGE_TSX=1 runs the TypeScript sources instead, never the old build; the compiled CLI does
 * real work (worker threads, templates); a build with an import that names nothing fails and keeps
 * the previous build. Each test works on its own copy of the sources (the checkout is shared), with
 * node_modules linked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_FILES } from '../../scripts/build-stamp.mjs';
import { execa } from 'execa';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const COPIED = PROJECT_FILES;
// Appended to the compiled entry only: every run of the build says so on stderr (not part of the stamp).
const MARK = 'gridforge-test: ran the compiled build';
let work: string;
let n = 0;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gridforge-build-'));
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A copy of the sources with node_modules linked, built, the build marked. */
async function builtCopy(): Promise<string> {
  const dir = path.join(work, `copy-${n++}`);
  fs.mkdirSync(dir);
  await execa('cp', ['-a', ...COPIED, dir], { cwd: ROOT });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  await build(dir);
  fs.appendFileSync(path.join(dir, '.build/scripts/cli/main.js'), `\nprocess.on('exit', () => process.stderr.write(${JSON.stringify(`${MARK}\n`)}));\n`);
  return dir;
}

async function build(dir: string, ...args: string[]) {
  const r = await execa('node', [path.join(dir, 'scripts/build.mjs'), ...args], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return r;
}

const gridforge = (dir: string, args: string[], env: Record<string, string> = {}) =>
  execa('node', [path.join(dir, 'scripts/bin/gridforge.mjs'), ...args], { cwd: dir, reject: false, env: { GRIDFORGE_QUIET: '1', ...env } });

describe('compiled CLI', () => {
  it('runs the build while it matches the sources, and the sources with GRIDFORGE_TSX=1', async () => {
    const dir = await builtCopy();
    const compiled = await gridforge(dir, ['--help']);
    expect(compiled.exitCode).toBe(0);
    expect(compiled.stderr).toContain(MARK);
    const sources = await gridforge(dir, ['--help'], { GRIDFORGE_TSX: '1' });
    expect(sources.exitCode).toBe(0);
    expect(sources.stderr).not.toContain(MARK);
    expect(sources.stdout).toBe(compiled.stdout);
  });

  it('an edited source runs from the source, never from the old build, until rebuilt', async () => {
    const dir = await builtCopy();
    const main = path.join(dir, 'scripts/cli/main.ts');
    fs.writeFileSync(main, fs.readFileSync(main, 'utf8').replace("'Build, flatten, publish", "'EDITED-SOURCE Build, flatten, publish"));
    const edited = await gridforge(dir, ['--help']);
    expect(edited.stdout).toContain('EDITED-SOURCE');
    expect(edited.stderr).not.toContain(MARK);
    const r = await build(dir);
    expect(r.stderr).toMatch(/compiled into \.build\//);
    const rebuilt = await gridforge(dir, ['--help']);
    expect(rebuilt.stdout).toContain('EDITED-SOURCE');
    expect(await build(dir).then((x) => x.stderr)).toContain('.build/ is up to date');
  });

  it('a file added to or removed from a source directory makes the build stale', async () => {
    const dir = await builtCopy();
    fs.writeFileSync(path.join(dir, 'cvmfs-publish/added-worker.mjs'), 'export {};\n');
    expect((await gridforge(dir, ['--version'])).stderr).not.toContain(MARK);
    const other = await builtCopy();
    fs.rmSync(path.join(other, 'stacks/README.md'));
    expect((await gridforge(other, ['--version'])).stderr).not.toContain(MARK);
  });

  it('publishes through its worker threads and renders templates like the sources do', async () => {
    const dir = await builtCopy();
    const repo = path.join(work, `repo-${n}`);
    const tree = path.join(work, `tree-${n}`);
    fs.mkdirSync(path.join(tree, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'a/b/big.bin'), Buffer.alloc(3 << 20, 'gridforge '));
    fs.writeFileSync(path.join(tree, 'a/small.txt'), 'hello from the compiled build\n');
    const steps = [
      ['repo', 'init', repo, '--name', 'build-test.cern.ch'],
      ['repo', 'publish', repo, tree, '--path', 'pkg/1.0', '--tag', 'v1'],
      ['repo', 'verify', repo],
    ];
    for (const s of steps) {
      const r = await gridforge(dir, s, { GRIDFORGE_COMPRESS_WORKERS: '2' });
      expect(r.exitCode, `${s.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toContain(MARK);
    }
    const cat = await gridforge(dir, ['repo', 'cat', repo, 'pkg/1.0/a/small.txt']);
    expect(cat.stdout).toBe('hello from the compiled build');
    const tags = await gridforge(dir, ['repo', 'tags', repo]);
    expect(tags.stdout).toMatch(/^v1\s+2\s/m);

    const compiled = await gridforge(dir, ['image', 'render', 'vobox-slurm']);
    expect(compiled.exitCode, compiled.stderr).toBe(0);
    expect(compiled.stderr).toContain(MARK);
    const sources = await gridforge(dir, ['image', 'render', 'vobox-slurm'], { GRIDFORGE_TSX: '1' });
    expect(compiled.stdout).toBe(sources.stdout);
    expect(compiled.stdout).toMatch(/^FROM /m);
  });

  it('an import that names no file fails the build, names it, and keeps the previous build', async () => {
    const dir = await builtCopy();
    const stamp = fs.readFileSync(path.join(dir, '.build/stamp.json'), 'utf8');
    fs.writeFileSync(path.join(dir, 'scripts/cli/dangling.ts'), "import { x } from './no-such-module.ts';\nexport const y = x;\n");
    const r = await execa('node', [path.join(dir, 'scripts/build.mjs')], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('scripts/cli/dangling.ts: import "./no-such-module.ts" names no file');
    expect(fs.readFileSync(path.join(dir, '.build/stamp.json'), 'utf8')).toBe(stamp);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.build.'))).toEqual([]);
  });
});
