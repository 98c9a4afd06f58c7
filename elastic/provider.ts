/**
 * The provider interface: what `gridforge elastic` needs from wherever worker nodes come from.
 * A provider creates one worker node for one Slurm node name (on the address the pool gives it),
 * destroys it, and lists what it holds for the site (labelled with site and node name), so that
 * reap can find resources Slurm no longer knows. Docker hosts over SSH are real
 * (providers/docker-ssh.ts); an OpenStack or Kubernetes provider implements the same four calls
 * and is chosen in providers/index.ts by `elastic.provider` — nothing else changes (README.md).
 */
export interface NodeSpec {
  /** Slurm node name, e.g. el2 */
  node: string;
  /** the address on the site LAN the pool assigns to this node */
  address: string;
  /** test faults (README "Faults"): `no-register` starts the node without slurmd */
  fault?: 'no-register';
}

export interface NodeResource {
  node: string;
  /** provider's id (container id, server id, pod uid) */
  id: string;
  /** where it lives (provider host, cloud region, cluster) */
  where: string;
  address?: string;
  /** provider's own state word (running, exited, created, ...) */
  state: string;
  createdAt: string;
}

export interface Provider {
  /** make sure images and networks exist on every host (idempotent; `elastic prepare`) */
  prepare(): Promise<string[]>;
  /** create and start the node; returns its address. On failure nothing of it is left. */
  create(spec: NodeSpec): Promise<{ address: string; id: string; where: string }>;
  /** remove the node's resources; false when there were none */
  destroy(node: string): Promise<boolean>;
  /** every resource of this site's pool */
  list(): Promise<NodeResource[]>;
  close(): void;
}

export const LABEL_SITE = 'org.gridforge.elastic.site';
export const LABEL_NODE = 'org.gridforge.elastic.node';
