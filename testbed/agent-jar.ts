/**
 * Builds the contract JobAgent/JobWrapper (testbed/agent/alien/site/*.java) into a jar named like
 * JAliEn's (`alien-users.jar`, what the startup script of templates/jobagent/startup.sh.hbs puts on
 * the class path), with the machine's javac for Java 8, so the 32-bit JDK from the repository and
 * any newer JVM run it. Publish it with `gridforge release jalien <v> --jar <it>`.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { GridforgeError, UsageError } from '../base/errors.ts';

export const AGENT_SOURCES = resolve(dirname(fileURLToPath(import.meta.url)), 'agent');

export async function buildAgentJar(output: string): Promise<string> {
  if (!/\.jar$/.test(output)) throw new UsageError(`"${output}" does not end in .jar`, { where: '--output', hint: 'e.g. --output build/alien-users.jar' });
  const out = resolve(output);
  const classes = mkdtempSync(join(dirname(out), '.agent-classes-'));
  try {
    const src = join(AGENT_SOURCES, 'alien', 'site');
    const files = readdirSync(src).filter((f) => f.endsWith('.java')).map((f) => join(src, f));
    const c = await execa('javac', ['--release', '8', '-Xlint:-options', '-d', classes, ...files], { reject: false });
    if (c.exitCode !== 0) throw new GridforgeError(`javac failed: ${c.stderr}`, { hint: 'install a JDK (openjdk-17-jdk-headless)' });
    const j = await execa('jar', ['cf', out, '-C', classes, '.'], { reject: false });
    if (j.exitCode !== 0) throw new GridforgeError(`jar failed: ${j.stderr}`);
    return out;
  } finally {
    rmSync(classes, { recursive: true, force: true });
  }
}
