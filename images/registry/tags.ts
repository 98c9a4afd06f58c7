/**
 * A repository's tags (distribution spec "Listing Tags": `GET /v2/<name>/tags/list?n=`, following
 * the `Link: <...>; rel="next"` header page by page), at most 100,000.
 */
import { GridforgeError, UsageError } from '../../base/errors.ts';
import type { RegistryClient } from './client.ts';
import { discard, readBody } from './transport.ts';

const MAX_TAGS = 100_000;

export async function listTags(client: RegistryClient, where: string): Promise<string[]> {
  const tags: string[] = [];
  let next: string | undefined = `/v2/${client.ref.repository}/tags/list?n=1000`;
  while (next) {
    const res = await client.request(next, { method: 'GET', headers: { Accept: 'application/json' } }, 'tag list');
    if (res.status === 404) {
      discard(res);
      throw new UsageError(`registry ${client.ref.registry} has no repository ${client.ref.repository}`, { where, hint: 'Check the image name.' });
    }
    if (res.status !== 200) {
      discard(res);
      throw new GridforgeError(`registry ${client.ref.registry} answered HTTP ${res.status} for the tag list of ${client.ref.repository}`, { where, hint: 'Check the registry.' });
    }
    const doc = JSON.parse((await readBody(res, 8 << 20, where)).toString('utf8')) as { tags?: unknown };
    if (doc.tags !== null && doc.tags !== undefined && (!Array.isArray(doc.tags) || doc.tags.some((t) => typeof t !== 'string'))) {
      throw new GridforgeError(`registry ${client.ref.registry} sent a malformed tag list`, { where, hint: 'Check the registry.' });
    }
    tags.push(...((doc.tags as string[] | null) ?? []));
    if (tags.length > MAX_TAGS) throw new GridforgeError(`${client.ref.repository} has more than ${MAX_TAGS} tags`, { where, hint: 'Name the tags without globs.' });
    const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''));
    next = link ? link[1] : undefined;
  }
  return tags;
}
