// The one-way architecture, enforced: no source file imports against the flow its folder's README
// declares (base at the bottom, capabilities above, the CLI on top). See test/support/import-flow.ts.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findFlowViolations, readRule } from '../support/import-flow.ts';
import { REPO_ROOT } from '../support/paths.ts';

const LAYERS = ['base', 'templates', 'images', 'cvmfs-publish', 'release', 'stacks', 'elastic', 'testbed', 'probes'];

describe('import flow', () => {
  it('every layer README states what it may import, and the shared base imports nothing of gridforge', () => {
    for (const f of LAYERS) expect(readRule(REPO_ROOT, f).length).toBeGreaterThan(0);
    expect(readRule(REPO_ROOT, 'base')).toEqual(['base']);
    expect(readRule(REPO_ROOT, 'cvmfs-publish')).toEqual(['cvmfs-publish', 'base']);
  });

  it('no source file imports against the flow', () => {
    const violations = findFlowViolations(REPO_ROOT, LAYERS);
    expect(violations.map((v) => `${v.file}:${v.line} -> ${v.target} (${v.rule})`)).toEqual([]);
  });

  it('fails on an import against the flow (scratch copy with one added)', () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-flow-'));
    try {
      for (const f of LAYERS) fs.cpSync(path.join(REPO_ROOT, f), path.join(scratch, f), { recursive: true });
      fs.appendFileSync(path.join(scratch, 'cvmfs-publish', 'format.ts'), "\nimport { loadConfig } from '../images/config.ts';\n");
      fs.appendFileSync(path.join(scratch, 'base', 'errors.ts'), "\nexport * from '../stacks/spec.ts';\n");
      const v = findFlowViolations(scratch, LAYERS);
      expect(v.map((x) => `${x.file} -> ${x.target}`).sort()).toEqual(['base/errors.ts -> stacks/spec.ts', 'cvmfs-publish/format.ts -> images/config.ts']);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});
