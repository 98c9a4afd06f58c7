/**
 * `docker://<registry>/<repository>[:<tag>][@sha256:<hex>]` references, parsed by the grammar of
 * the distribution project (github.com/distribution/reference, reference.go): the first component
 * is the registry when it holds a `.` or `:` or is `localhost` (otherwise Docker Hub, with
 * `library/` for one-component names); repository components are lowercase alphanumerics with
 * `.`, `_`, `__`, `-` separators; tags `[\w][\w.-]{0,127}`; digests sha256 only.
 */
import { UsageError } from '../../base/errors.ts';

export const DOCKER_SCHEME = 'docker://';

export interface RegistryRef {
  /** host[:port] as written (docker.io for Docker Hub). */
  registry: string;
  /** host[:port] the API is served at (registry-1.docker.io for Docker Hub). */
  endpoint: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** The reference as given, without the scheme. */
  display: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export function isRegistryRef(source: string): boolean {
  return source.startsWith(DOCKER_SCHEME);
}

function bad(source: string, why: string): never {
  throw new UsageError(`${JSON.stringify(source)} is not a registry reference: ${why}`, {
    where: source,
    hint: 'Write docker://<registry>/<repository>:<tag> or docker://<registry>/<repository>@sha256:<64 hex digits>, e.g. docker://registry.example.org:5000/alice/job:2026.11.',
  });
}

export function parseRegistryRef(source: string): RegistryRef {
  if (!isRegistryRef(source)) bad(source, `it does not start with ${DOCKER_SCHEME}`);
  const rest = source.slice(DOCKER_SCHEME.length);
  if (rest.length > 4096) bad(source, 'it is longer than 4096 characters');
  let name = rest;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    name = rest.slice(0, at);
    digest = rest.slice(at + 1);
    if (!DIGEST.test(digest)) bad(source, `the digest ${JSON.stringify(digest)} is not sha256:<64 lowercase hex digits>`);
  }
  let tag: string | undefined;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) bad(source, `the tag ${JSON.stringify(tag)} is not valid (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  const parts = name.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) registry = parts.shift()!;
  if (!HOST.test(registry)) bad(source, `the registry ${JSON.stringify(registry)} is not a host[:port]`);
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  for (const c of parts) if (!COMPONENT.test(c)) bad(source, `the repository component ${JSON.stringify(c)} is not valid (lowercase letters, digits, separators . _ __ -)`);
  const repository = parts.join('/');
  if (repository.length > 255) bad(source, 'the repository name is longer than 255 characters');
  if (!tag && !digest) tag = 'latest';
  return { registry, endpoint: registry === 'docker.io' ? 'registry-1.docker.io' : registry, repository, tag, digest, display: rest };
}

/** `registry/repository:tag` (no scheme), the name a flattened image of it gets. */
export function refName(r: RegistryRef): string | undefined {
  return r.tag ? `${r.registry}/${r.repository}:${r.tag}` : undefined;
}
