/**
 * The smoke job's payload (bash, run by the JobWrapper inside the job container) and the job
 * description carrying it. Each check prints a `== <step>` line first, so a failure names its step.
 */
export const PAYLOAD_STEPS = ['java -version && ps --version', '/cvmfs visible', '/workdir writable', 'JAliEn version'] as const;

export function smokePayload(repoName: string, sleepSeconds = 0, jalienSource = 'module default'): string {
  const root = `/cvmfs/${repoName}`;
  return [
    `echo "== ${PAYLOAD_STEPS[0]}"; java -version 2>&1 && ps --version || exit 10`,
    `echo "== ${PAYLOAD_STEPS[1]}"; test -x ${root}/bin/alienv || { echo "${root} is not visible in the container"; exit 11; }; echo "${root} visible"`,
    `echo "== ${PAYLOAD_STEPS[2]}"; echo probe > /workdir/.probe || { echo "/workdir is not writable"; exit 12; }; echo "/workdir writable"`,
    `echo "== ${PAYLOAD_STEPS[3]}"; [ -n "\${JALIEN_VERSION:-}" ] && [ -d "\${JALIEN_ROOT:-/none}/lib" ] || { echo "JAliEn '\${JALIEN_VERSION:-}' (${jalienSource}) is not in ${root}"; exit 13; }; echo "JAliEn \${JALIEN_VERSION} (${jalienSource}) at \${JALIEN_ROOT}"`,
    ...(sleepSeconds > 0 ? [`echo "== sleep ${sleepSeconds}"; sleep ${sleepSeconds}`] : []),
    'echo "== smoke ok"',
  ].join('\n');
}

/** A JDL with base64 values (so any payload survives the quoting), as the JobWrapper reads it. */
export function smokeJdl(payload: string, fault?: string): string {
  const b = (s: string) => Buffer.from(s).toString('base64');
  return [`Executable = "${b(payload)}";`, ...(fault ? [`TestbedFault = "${b(fault)}";`] : []), ''].join('\n');
}

/** The step a failed payload stopped at: the last `== ` line of its output. */
export function failedStep(output: string): string | undefined {
  const steps = output.split('\n').filter((l) => l.startsWith('== ')).map((l) => l.slice(3));
  return steps.at(-1);
}
