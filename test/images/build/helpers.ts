/**
 * Helpers for the images build suites: run the real CLI (node scripts/bin/gridforge.mjs), run the
 * docker CLI, write throw-away configs. Everything this suite creates on the engine is named with
 * the `gfimg` prefix (images `gfimgtest/...`, containers `gfimg-...`).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = path.join(ROOT, 'scripts/bin/gridforge.mjs');
export const PREFIX = 'gfimg';
export const IMAGE_PREFIX = 'gfimgtest';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function gridforge(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {}): Promise<RunResult> {
  const r = await execa('node', [CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    reject: false,
    timeout: opts.timeout ?? 600_000,
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export async function docker(args: string[], opts: { timeout?: number } = {}): Promise<RunResult> {
  const r = await execa('docker', args, { reject: false, timeout: opts.timeout ?? 120_000 });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A temporary folder with the given config text written to gridforge.yaml (plus extra files). */
export function tempConfig(yamlText: string, files: Record<string, string> = {}): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-cfg-`));
  const file = path.join(dir, 'gridforge.yaml');
  writeFileSync(file, yamlText);
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  return { dir, file };
}

/**
 * The `images:` block of the suites' gridforge.yaml: the Debian VO-box (slurm flavour) and the job
 * image with the packaged job list; `more` (further entries, indented two spaces) is appended.
 */
export function debianImagesYaml(more = ''): string {
  return `images:
  vobox-slurm:
    kind: vobox
    os: debian
    flavour: slurm
  job:
    kind: job
    os: debian
    packages: ${path.join(ROOT, 'images/packages/job-debian.txt')}
${more}`;
}

export function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Poll until fn returns a truthy value or the deadline passes; returns the last value. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number, intervalMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  let value = await fn();
  while (!value && Date.now() < end) {
    await sleep(intervalMs);
    value = await fn();
  }
  return value;
}
