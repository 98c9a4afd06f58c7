/**
 * A minimal project config (`gridforge.yaml`) for tests that run the CLI against their own
 * repository: the Debian base, a job image built from `packages.txt` beside the file (optionally
 * the Slurm VO-box), the repository, and optionally the release section. One builder, so a new
 * required key is added in one place.
 */
export interface ProjectConfigOptions {
  prefix: string;
  repository: { dir: string; name: string; keys: string };
  /** also declare the vobox-slurm image */
  vobox?: boolean;
  /** the release.jalien section (images: the image names it builds, as a YAML list) */
  release?: { images: string[]; java32?: { jdk: string; libs: string[]; mountPrefix: string } };
}

export function projectConfigYaml(o: ProjectConfigOptions): string {
  const lines = [
    `prefix: ${o.prefix}`,
    'bases:',
    '  debian:',
    '    image: gridforge/base:debian-bookworm',
    'images:',
    '  job:',
    '    kind: job',
    '    os: debian',
    '    packages: packages.txt',
  ];
  if (o.vobox) lines.push('  vobox-slurm:', '    kind: vobox', '    os: debian', '    flavour: slurm');
  lines.push('repository:', `  dir: ${o.repository.dir}`, `  name: ${o.repository.name}`, `  keys: ${o.repository.keys}`);
  if (o.release) {
    lines.push('release:', '  jalien:', '    arch: el9-x86_64', '    jars: [build/alien-users.jar]', `    images: [${o.release.images.join(', ')}]`);
    const j = o.release.java32;
    if (j) lines.push('  java32:', `    jdk: ${j.jdk}`, `    libs: [${j.libs.join(', ')}]`, `    mountPrefix: ${j.mountPrefix}`);
  }
  return `${lines.join('\n')}\n`;
}
