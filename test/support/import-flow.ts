/**
 * The one-way flow, checked from the real imports: every top-level source folder's README.md
 * carries a line `May import: a, b` (or `May import: nothing of gridforge`), and every relative
 * import (static, dynamic, re-export) of every .ts/.mjs/.mts file below that folder must land in
 * the folder itself or in one it names. `release` in a rule means the release capability folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FlowViolation {
  file: string;
  line: number;
  target: string;
  rule: string;
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bexport\s+\*\s+from\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The folders a folder may import, read from its README's `May import:` line (itself always allowed). */
export function readRule(root: string, folder: string): string[] {
  const readme = path.join(root, folder, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const m = /^May import:\s*(.+)$/m.exec(text);
  if (!m) throw new Error(`${readme}: no "May import:" line`);
  const spec = m[1].replace(/`/g, '').trim();
  if (/^nothing\b/i.test(spec)) return [folder];
  return [folder, ...spec.split(/[,;]\s*/).map((s) => s.replace(/\s*\(.*\)\s*$/, '').replace(/\.$/, '').trim()).filter(Boolean)];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    else if (/\.(ts|mts|mjs|js)$/.test(e.name)) yield p;
  }
}

/** Whether `target` (a path relative to root) lies inside one of `allowed` (folders or sub-folders, relative to root). */
function allowedTarget(target: string, allowed: string[]): boolean {
  return allowed.some((a) => target === a || target.startsWith(`${a}/`));
}

/** Every import against the flow in `folders` (top-level folders of `root`). */
export function findFlowViolations(root: string, folders: string[]): FlowViolation[] {
  const out: FlowViolation[] = [];
  for (const folder of folders) {
    const allowed = readRule(root, folder);
    for (const file of sourceFiles(path.join(root, folder))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(IMPORT_RE)) {
        const target = path.relative(root, path.resolve(path.dirname(file), m[1]));
        if (allowedTarget(target, allowed)) continue;
        out.push({
          file: path.relative(root, file),
          line: text.slice(0, m.index).split('\n').length,
          target,
          rule: `${folder} may import ${allowed.slice(1).join(', ') || 'nothing of gridforge'}`,
        });
      }
    }
  }
  return out;
}
