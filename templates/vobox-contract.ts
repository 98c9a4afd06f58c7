/**
 * The VO-box and job-image contract the templates implement, defined once: the service names
 * (templates/vobox/rootfs: one supervisord program each, `GRIDFORGE_SERVICES`), the default set,
 * and the bind points a job image / sandbox must already have (the binds of JAliEn
 * `src/alien/site/JobAgent.java`; apptainer/apptainer `internal/pkg/build/sources/base_environment.go`).
 * gridforge.yaml (images/config.ts), site files (stacks/spec.ts), the image renderer
 * (images/render.ts) and the sandbox writer (images/sandbox/apptainer-layout.ts) import it.
 */

/** VO-box services, in the order they are documented; supervisord program names equal these. */
export const SERVICES = ['ce', 'monalisa', 'batch', 'cron', 'rsyslog', 'proxy-renewal', 'sshd'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Started when GRIDFORGE_SERVICES is unset: the services that need nothing from the site. */
export const DEFAULT_SERVICES: ServiceName[] = ['cron', 'rsyslog', 'sshd'];

/**
 * Bind destinations a job runs with, pre-created because without overlay/underlay (unprivileged
 * Apptainer on worker nodes) a destination that does not exist fails (Apptainer user
 * guide, "Bind Paths and Mounts"): /cvmfs, /workdir, /srv, /etc/localtime; /tmp (JAliEn binds
 * `<workdir>/tmp:/tmp`), /var/tmp, /etc/hosts and /etc/resolv.conf (Apptainer binds its own by default).
 */
export const JOB_BIND_POINTS: string[] = ['/cvmfs', '/workdir', '/srv', '/tmp', '/var/tmp', '/etc/localtime', '/etc/hosts', '/etc/resolv.conf'];

/**
 * Bind points every OS base image already has (FHS), so an image build must not create or
 * re-mode them (`install -d -m 0755 /tmp` would drop /tmp's sticky bit); /etc/localtime is made by
 * the job Dockerfile itself (templates/job/Dockerfile.hbs). The sandbox writer adds any missing.
 */
export const OS_BIND_POINTS: ReadonlySet<string> = new Set(['/tmp', '/var/tmp', '/etc/localtime', '/etc/hosts', '/etc/resolv.conf']);
