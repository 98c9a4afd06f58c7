// base/yaml-file.ts: syntax and schema errors point at file:line:column and the key, as editors expect.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { loadYamlFile, locateKey } from '../../base/yaml-file.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function file(text: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-yaml-'));
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'site.yaml'), text);
  return path.join(d, 'site.yaml');
}
const schema = z.object({ site: z.string(), host: z.object({ address: z.string().ip(), port: z.number() }).strict(), list: z.array(z.enum(['a', 'b'])) }).strict();

describe('yaml-file', () => {
  it('a syntax error names file:line:column', () => {
    const f = file('site: x\nhost:\n  address: [1\n');
    expect(() => loadYamlFile(f, schema)).toThrow(expect.objectContaining({ where: expect.stringMatching(new RegExp(`^${f}:\\d+:\\d+$`)) }));
  });

  it('a schema error names file:line:column and the key path', () => {
    const f = file('site: x\nhost:\n  address: 10.0.0.1\n  port: "22"\nlist:\n  - a\n');
    expect(() => loadYamlFile(f, schema)).toThrow(expect.objectContaining({ where: `${f}:4:3: host.port` }));
    const g = file('site: x\nhost:\n  address: 10.0.0.1\n  port: 22\nlist:\n  - a\n  - c\n');
    expect(() => loadYamlFile(g, schema)).toThrow(expect.objectContaining({ where: `${g}:7:5: list[1]` }));
  });

  it('an unknown key is named with a hint to remove it', () => {
    const f = file('site: x\nhost:\n  address: 10.0.0.1\n  port: 22\n  prot: 1\nlist: []\n');
    expect(() => loadYamlFile(f, schema)).toThrow(expect.objectContaining({ hint: expect.stringContaining('prot') }));
  });

  it('locateKey follows nesting and list items, and says nothing for keys it cannot find', () => {
    const t = 'a:\n  b:\n    c: 1\n  d:\n    - x\n    - y\n';
    expect(locateKey(t, ['a', 'b', 'c'])).toBe('3:5');
    expect(locateKey(t, ['a', 'd', 1])).toBe('6:7');
    expect(locateKey(t, ['a', 'zz'])).toBeUndefined();
  });

  it('refuses a FIFO or an oversized file instead of hanging or reading it all', () => {
    const f = file('x');
    fs.rmSync(f);
    fs.writeFileSync(f, Buffer.alloc(5 * 1024 * 1024, 0x20));
    expect(() => loadYamlFile(f, schema)).toThrow(/more than/);
  });
});
