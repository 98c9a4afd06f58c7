/**
 * Pulumi program entry (Pulumi.yaml at the repo root: `main: stacks/pulumi/index.ts`, nodeargs `--import tsx`).
 * Stack config:
 *   gridforge:siteFile   path of the site file (required)
 *   gridforge:nofileMax  the host's achievable nofile (optional; the SSH engine measures it, Pulumi cannot)
 */
import * as pulumi from '@pulumi/pulumi';
import { loadSiteSpec } from '../spec.ts';
import { defineSite } from './program.ts';

const cfg = new pulumi.Config('gridforge');
const spec = loadSiteSpec(cfg.require('siteFile'));
const nofileMax = cfg.getNumber('nofileMax');
const site = defineSite(spec, { nofileMax });

export const containerName = site.container.name;
export const ip = site.settings.container.ip;
export const mac = site.settings.container.mac;
export const settingsHash = site.settings.settingsHash;
