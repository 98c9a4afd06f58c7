/**
 * The JobAgent startup script (templates/jobagent/startup.sh.hbs): what a CE submits to the batch
 * queue. Shape follows JAliEn's ComputingElement (exports, `source <(alienv printenv JAliEn/<v>)`,
 * `<cvmfs>/java/JDKs/i686/jdk-latest/bin/java -client -Xms16M -Xmx64M ... alien.site.JobRunner`).
 * Values come as plain data (the CLI reads the site file through stacks/ and the project config).
 */
import { UsageError } from '../../base/errors.ts';
import { renderTemplate } from '../../templates/render.ts';
import { validateJalienVersion } from './version.ts';

export interface JobAgentStartupInput {
  site: string;
  /** CE host (the VO-box FQDN). */
  ceHost: string;
  /** CE name in LDAP (`ALICE::<site>::<ce>`), default `ALICE::<site>::CE`. */
  ce?: string;
  /** host:port of the CE's proxy (ALIEN_CM_AS_LDAP_PROXY), default `<ceHost>:8084`. */
  cmProxy?: string;
  /** JobAgent time to live in seconds (default 86400). */
  ttl?: number;
  /** MonALISA host (APMON_CONFIG), default the CE host. */
  monalisa?: string;
  /** JAliEn version; undefined = the module default. */
  jalienVersion?: string;
  /** Repository root on worker nodes, e.g. /cvmfs/alice.cern.ch. */
  cvmfsRoot: string;
  /** Run the JobAgent on the 64-bit java of the environment instead of the 32-bit runtime. */
  java64?: boolean;
  xms?: string;
  xmx?: string;
  mainClass?: string;
  jar?: string;
  /** Extra `export NAME=value` lines (site environment). */
  env?: Record<string, string>;
}

const JVM_SIZE = /^[0-9]+[kKmMgG]$/;

export function renderJobAgentStartup(input: JobAgentStartupInput): string {
  const xms = input.xms ?? '16M';
  const xmx = input.xmx ?? '64M';
  for (const [k, v] of [['xms', xms], ['xmx', xmx]] as const) {
    if (!JVM_SIZE.test(v)) throw new UsageError(`${k} "${v}" is not a JVM size`, { where: `--${k}`, hint: 'use e.g. 16M or 1G' });
  }
  const mainClass = input.mainClass ?? 'alien.site.JobRunner';
  if (!/^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*$/.test(mainClass)) throw new UsageError(`"${mainClass}" is not a Java class name`, { where: '--class' });
  const jar = input.jar ?? 'alien-users.jar';
  if (!/^[A-Za-z0-9._+-]+\.jar$/.test(jar)) throw new UsageError(`"${jar}" is not a jar file name`, { where: '--jar' });
  if (!/^\/[A-Za-z0-9._+@/-]*$/.test(input.cvmfsRoot)) {
    throw new UsageError(`"${input.cvmfsRoot}" is not a plain absolute path`, { where: '--cvmfs-root', hint: 'use / then letters, digits and . _ + @ - / only, e.g. /cvmfs/alice.cern.ch' });
  }
  const cvmfsRoot = input.cvmfsRoot.replace(/\/+$/, '');
  const version = input.jalienVersion ? validateJalienVersion(input.jalienVersion, '--jalien-version') : undefined;
  const ttl = input.ttl ?? 86400;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new UsageError(`TTL ${ttl} is not a positive number of seconds`, { where: '--ttl' });

  // Raw values: the template quotes each one ({{sh value}}).
  const exports: { name: string; value: string }[] = [
    { name: 'ALIEN_CM_AS_LDAP_PROXY', value: input.cmProxy ?? `${input.ceHost}:8084` },
    { name: 'site', value: input.site },
    { name: 'CE', value: input.ce ?? `ALICE::${input.site}::CE` },
    { name: 'CEhost', value: input.ceHost },
    { name: 'TTL', value: String(ttl) },
    { name: 'APMON_CONFIG', value: input.monalisa ?? input.ceHost },
  ];
  for (const [name, value] of Object.entries(input.env ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`"${name}" is not an environment variable name`, { where: '--env' });
    exports.push({ name, value });
  }
  const javaCommand = input.java64 ? ['java'] : [`${cvmfsRoot}/java/JDKs/i686/jdk-latest/bin/java`, '-client'];
  return renderTemplate('jobagent/startup.sh.hbs', {
    siteName: input.site,
    jalienVersionLabel: version ?? '(module default)',
    jalienModule: version ? `JAliEn/${version}` : 'JAliEn',
    cvmfsRoot,
    alienv: `${cvmfsRoot}/bin/alienv`,
    mainClass,
    jar,
    javaLabel: input.java64 ? '64-bit' : '32-bit',
    javaCommand,
    jvmArgs: [`-Xms${xms}`, `-Xmx${xmx}`, '-Djdk.lang.Process.launchMechanism=vfork'],
    exports,
  });
}
