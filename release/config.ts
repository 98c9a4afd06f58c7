/**
 * The `release` section of the project config (`gridforge.yaml`): JAliEn (platform, jars, Java
 * module, images and sandboxes of `release --from-git`), the 32-bit Java runtime and the JobAgent
 * startup defaults. The CLI composes it with the other sections (scripts/cli/project-config.ts).
 */
import { z } from 'zod';

export const ReleaseSchema = z
  .object({
    jalien: z
      .object({
        /** Platform directory in the repository, e.g. el9-x86_64. */
        arch: z.string().min(1),
        /** Jar files of a release (relative to the config file); `release --from-git` publishes them. */
        jars: z.array(z.string().min(1)).nonempty().optional(),
        /** Module the JAliEn modulefile loads for its Java (default `Java`: the Java runtime's default). */
        javaModule: z.string().min(1).optional(),
        /** Images `release --from-git` builds and flattens with the version (default: all images). */
        images: z.array(z.string().min(1)).optional(),
        /** Job images published as sandboxes containers/fs/singularity/<name>-<version> (default: all job images). */
        sandboxes: z.array(z.string().min(1)).optional(),
      })
      .strict(),
    /** 32-bit Java runtime: i386 JDK and libraries (dirs, .debs, tarballs; relative to the config file). */
    java32: z
      .object({
        jdk: z.string().min(1),
        libs: z.array(z.string().min(1)).nonempty(),
        /** Where worker nodes mount the repository (default /cvmfs/<repository.name>). */
        mountPrefix: z.string().regex(/^\//, 'expected an absolute path such as /cvmfs/alice.cern.ch').optional(),
      })
      .strict()
      .optional(),
    /** JobAgent startup script defaults (`gridforge render jobagent-startup`). */
    jobagent: z
      .object({
        xms: z.string().regex(/^[0-9]+[kKmMgG]$/, 'expected a JVM size such as 16M').default('16M'),
        xmx: z.string().regex(/^[0-9]+[kKmMgG]$/, 'expected a JVM size such as 64M').default('64M'),
        /** The JobAgent main class. */
        mainClass: z.string().regex(/^[A-Za-z_][\w.$]*$/, 'expected a Java class name').default('alien.site.JobRunner'),
        /** Jar (in the JAliEn package's lib/) holding the class. */
        jar: z.string().min(1).default('alien-users.jar'),
      })
      .strict()
      .default({}),
  })
  .strict();

/** Used when the config has no `release` section. */
export const DEFAULT_RELEASE: z.input<typeof ReleaseSchema> = { jalien: { arch: 'el9-x86_64' } };

/** The validated section (paths still relative to the config file). */
export type ReleaseConfig = z.infer<typeof ReleaseSchema>;
