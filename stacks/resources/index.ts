/**
 * The deploy resources in apply order (host files, then the network, the image, the container).
 * Plan concatenates their diffs in this order; destroy walks it backwards; the Pulumi host-setup
 * script is the concatenation of their hostScript lines.
 */
import { container } from './container.ts';
import { cvmfsConfig } from './cvmfs-config.ts';
import { daemonJson } from './daemon-json.ts';
import { directories } from './directories.ts';
import { image } from './image.ts';
import { limits } from './limits.ts';
import { network } from './network.ts';
import { sysctl } from './sysctl.ts';
import { systemdDropIns } from './systemd-dropins.ts';
import type { Resource } from './types.ts';

export const RESOURCES: readonly Resource[] = [directories, daemonJson, limits, sysctl, systemdDropIns, cvmfsConfig, network, image, container];

export { container, cvmfsConfig, daemonJson, directories, image, limits, network, sysctl, systemdDropIns };
export type { Change, ChangeKind, Desired, DestroyOutcome, Log, Observed, Resource } from './types.ts';
