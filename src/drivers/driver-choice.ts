/**
 * Which partitioning driver an LC gets. `lxc` (unprivileged LXC system containers: a user namespace per
 * LC, seccomp, a device allow-list, idmapped disks) is the default and the only driver an operator can
 * create or start LCs on (`lc create`, `apply`, `POST /v1/lcs`, `demo`, a patch run's standby).
 * `namespace` is retired for operators: it boots an image's own init in a few hundred milliseconds, which
 * the project's own tests and benchmarks use, but the LC's root is the host's root in its own namespaces
 * (no user namespace, no seccomp filter, CAP_SYS_ADMIN kept), so root inside can take the host. It runs
 * only when the process says it is the project's test suite (`UNDERSTUDY_TEST_DRIVERS=namespace`, set by
 * scripts/run-tests.sh and the benchmarks). Existing namespace LCs can still be listed, stopped and
 * destroyed without it.
 */
import { UnderstudyError } from '../core/index.ts';

/** The driver of an LC whose request names none. */
export const defaultDriver = 'lxc';

/** The environment variable that enables retired drivers for the project's own tests (comma-separated). */
export const testDriversVariable = 'UNDERSTUDY_TEST_DRIVERS';

/** Drivers retired for operators and kept for the project's tests, each with what it lacks. */
export const retiredDrivers: Readonly<Record<string, string>> = {
  namespace:
    "retired for operators, the project's tests only: it is not isolated like LXC (the LC's root is the host's root in its own namespaces, without a user namespace or a seccomp filter)",
};

const descriptions: Readonly<Record<string, string>> = {
  lxc: 'the default: an unprivileged LXC system container',
  ...retiredDrivers,
};

/** The drivers for a `--driver` help text: the default first, each with what it is. */
export function describeDrivers(names: readonly string[]): string {
  return [...names]
    .sort((a, b) => Number(b === defaultDriver) - Number(a === defaultDriver))
    .map((name) => (descriptions[name] ? `${name} (${descriptions[name]})` : name))
    .join(' | ');
}

/** True when `driver` is retired and the environment does not enable it for the project's tests. */
export function isDriverRetired(driver: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (retiredDrivers[driver] === undefined) return false;
  const enabled = (env[testDriversVariable] ?? '').split(',').map((name) => name.trim());
  return !enabled.includes(driver);
}

/**
 * Throws DRIVER_RETIRED when an LC (`lc`) is to be created or started (`action`) on a retired driver
 * outside the project's tests. Listing, stopping and destroying never call this.
 */
export function assertDriverUsable(
  options: { lc: string; driver: string; action: 'create' | 'start' },
  env: NodeJS.ProcessEnv = process.env,
): void {
  const { lc, driver, action } = options;
  if (!isDriverRetired(driver, env)) return;
  throw new UnderstudyError(
    'DRIVER_RETIRED',
    `Cannot ${action} "${lc}" on the ${driver} driver: the ${driver} driver is retired for operators, it is not isolated like LXC (root inside can take the host)`,
    {
      hint:
        action === 'create'
          ? `Use --driver ${defaultDriver} (the default), or leave driver out.`
          : `Destroy it (\`understudy lc destroy ${lc}\`) and create it again on the ${defaultDriver} driver (the default); stop, destroy and list still work for ${driver} LCs.`,
      details: { lc, driver, testDriversVariable },
    },
  );
}

/** The warning to show when an LC is created on a retired driver (the test suite), or undefined. */
export function retiredDriverWarning(lc: string, driver: string): string | undefined {
  const why = retiredDrivers[driver];
  return why ? `warning: ${lc} runs on the ${driver} driver (${why})` : undefined;
}
