/** The provider of a pool (`elastic.provider`): one line per provider; add OpenStack / Kubernetes here. */
import type { SiteSpec } from '../../stacks/index.ts';
import type { Pool } from '../pool.ts';
import type { Provider } from '../provider.ts';
import { DockerSshProvider } from './docker-ssh.ts';

export function providerFor(pool: Pool, spec: SiteSpec): Provider {
  switch (pool.provider) {
    case 'docker-ssh':
      return new DockerSshProvider(pool, spec);
  }
}
