/** Headless Debian chromium for the HTML report tests: DOM after parsing, and a screenshot. */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function chromium(args: string[]): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'gf-rollout-chromium-'));
  try {
    const r = await execa('chromium', [...FLAGS, `--user-data-dir=${profile}`, ...args], { timeout: 90_000, reject: false });
    if (r.exitCode !== 0) throw new Error(`chromium failed (${r.exitCode}): ${String(r.stderr).slice(-800)}`);
    return String(r.stdout);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The DOM chromium built from the file (its serialisation after parsing). */
export function dumpDom(file: string): Promise<string> {
  return chromium(['--dump-dom', `file://${file}`]);
}

/** A PNG screenshot; returns its width, height and size. */
export async function screenshot(file: string, png: string, size = '1280,1400'): Promise<{ width: number; height: number; bytes: number }> {
  await chromium([`--screenshot=${png}`, `--window-size=${size}`, '--hide-scrollbars', `file://${file}`]);
  const buf = readFileSync(png);
  if (buf.subarray(1, 4).toString() !== 'PNG') throw new Error(`${png} is not a PNG`);
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), bytes: buf.length };
}

/** Text content of the element with this id in a dumped DOM (tags stripped, entities decoded). */
export function sectionText(dom: string, id: string): string {
  const start = dom.indexOf(`id="${id}"`);
  if (start < 0) return '';
  const open = dom.lastIndexOf('<', start);
  const tag = /^<(\w+)/.exec(dom.slice(open))![1];
  let depth = 0;
  const re = new RegExp(`<(/?)${tag}\\b[^>]*>`, 'g');
  re.lastIndex = open;
  let m: RegExpExecArray | null;
  let end = dom.length;
  while ((m = re.exec(dom))) {
    depth += m[1] ? -1 : 1;
    if (depth === 0) {
      end = m.index;
      break;
    }
  }
  return dom
    .slice(open, end)
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}
