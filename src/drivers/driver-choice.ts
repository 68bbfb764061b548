/**
 * Which partitioning driver an LC gets. `lxc` (unprivileged LXC system containers: a user namespace per
 * LC, seccomp, a device allow-list, idmapped disks) is the default of every operator-facing command
 * (`lc create`, `apply`, `POST /v1/lcs`, `demo`). `namespace` stays for tests and development only: it
 * boots an image's own init in a few hundred milliseconds, but the LC's root is the host's root in its
 * own namespaces (no user namespace, no seccomp filter), so root inside can take the host.
 */

/** The driver of an LC whose request names none. */
export const defaultDriver = 'lxc';

/** Drivers with weaker isolation, kept for tests and development, each with what it lacks. */
export const developmentDrivers: Readonly<Record<string, string>> = {
  namespace:
    "tests and development only, weaker isolation: the LC's root is the host's root in its own namespaces, without a user namespace or a seccomp filter",
};

const descriptions: Readonly<Record<string, string>> = {
  lxc: 'the default: an unprivileged LXC system container',
  ...developmentDrivers,
};

/** The drivers for a `--driver` help text: the default first, each with what it is. */
export function describeDrivers(names: readonly string[]): string {
  return [...names]
    .sort((a, b) => Number(b === defaultDriver) - Number(a === defaultDriver))
    .map((name) => (descriptions[name] ? `${name} (${descriptions[name]})` : name))
    .join(' | ');
}

/** The warning to show when an LC is created on a development driver, or undefined. */
export function developmentDriverWarning(lc: string, driver: string): string | undefined {
  const why = developmentDrivers[driver];
  return why ? `warning: ${lc} runs on the ${driver} driver (${why})` : undefined;
}
