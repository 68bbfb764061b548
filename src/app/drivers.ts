/**
 * The driver registry: one line per partitioning driver, keyed by the name an LC records in
 * `LcRecord.driver`. Adding a driver is one folder under src/drivers plus one line here.
 */
import { UnderstudyError } from '../core/index.ts';
import path from 'node:path';
import {
  assertDriverUsable,
  LxcDriver,
  NamespaceDriver,
  type DriverEnvironment,
  type DriverFactory,
  type PartitioningDriver,
} from '../drivers/index.ts';
import type { Db } from '../store/index.ts';
import { getLc } from '../inventory/index.ts';
import type { ExecOptions, ExecResult } from '../core/index.ts';
import type { LcSpec, NicSpec } from '../drivers/index.ts';

/** lxc is the default (src/drivers/driver-choice.ts); namespace is retired for operators, kept for tests. */
export const driverFactories: Readonly<Record<string, DriverFactory>> = {
  lxc: (env) => new LxcDriver({ ...env, lxcPath: path.join(env.stateDir, 'lxc') }),
  namespace: (env) => new NamespaceDriver(env),
};

export const driverNames = (): string[] => Object.keys(driverFactories);

/**
 * The driver port as the rest of the manager sees it: each call goes to the driver the LC was
 * created with (built once, on first use).
 */
export class DriverRegistry implements PartitioningDriver {
  readonly name = 'registry';
  private readonly built = new Map<string, PartitioningDriver>();

  constructor(
    private readonly db: Db,
    private readonly env: DriverEnvironment,
  ) {}

  /** The driver named `name`; throws DRIVER_UNKNOWN for a name not in the registry. */
  driver(name: string): PartitioningDriver {
    let driver = this.built.get(name);
    if (driver) return driver;
    const factory = driverFactories[name];
    if (!factory)
      throw new UnderstudyError('DRIVER_UNKNOWN', `There is no partitioning driver "${name}"`, {
        hint: `Known drivers: ${driverNames().join(', ')}.`,
      });
    driver = factory(this.env);
    this.built.set(name, driver);
    return driver;
  }

  /** The driver that runs the LC `lc` (from its record in the resource table). */
  of(lc: string): PartitioningDriver {
    return this.driver(getLc(this.db, lc).driver);
  }

  /** Throws DRIVER_RETIRED for an LC of a retired driver outside the project's tests. */
  create = async (spec: LcSpec): Promise<void> => {
    assertDriverUsable({ lc: spec.name, driver: getLc(this.db, spec.name).driver, action: 'create' });
    await this.of(spec.name).create(spec);
  };
  destroy = (spec: LcSpec): Promise<void> => this.of(spec.name).destroy(spec);
  /** Throws DRIVER_RETIRED for an LC of a retired driver outside the project's tests. */
  start = async (spec: LcSpec): Promise<void> => {
    assertDriverUsable({ lc: spec.name, driver: getLc(this.db, spec.name).driver, action: 'start' });
    await this.of(spec.name).start(spec);
  };
  stop: PartitioningDriver['stop'] = (name, options) => this.of(name).stop(name, options);
  reboot: PartitioningDriver['reboot'] = (name) => this.of(name).reboot(name);
  status: PartitioningDriver['status'] = (name) => this.of(name).status(name);
  waitUntilUp: PartitioningDriver['waitUntilUp'] = (name, options) =>
    this.of(name).waitUntilUp(name, options);
  exec = (name: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> =>
    this.of(name).exec(name, argv, options);
  netExec = (name: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> =>
    this.of(name).netExec(name, argv, options);
  writeFile: PartitioningDriver['writeFile'] = (spec, lcPath, data, mode) =>
    this.of(spec.name).writeFile(spec, lcPath, data, mode);
  readFile: PartitioningDriver['readFile'] = (spec, lcPath) => this.of(spec.name).readFile(spec, lcPath);
  addNic = (spec: LcSpec, nic: NicSpec): Promise<void> => this.of(spec.name).addNic(spec, nic);
  removeNic: PartitioningDriver['removeNic'] = (spec, nicName) => this.of(spec.name).removeNic(spec, nicName);
  freeze: PartitioningDriver['freeze'] = (name) => this.of(name).freeze(name);
  thaw: PartitioningDriver['thaw'] = (name) => this.of(name).thaw(name);
  setWriteLimit: PartitioningDriver['setWriteLimit'] = (name, device, bps) =>
    this.of(name).setWriteLimit(name, device, bps);
  usage: PartitioningDriver['usage'] = (name) => this.of(name).usage(name);
  consoleTail: PartitioningDriver['consoleTail'] = (name, lines) => this.of(name).consoleTail(name, lines);
  readReports: PartitioningDriver['readReports'] = (name) => this.of(name).readReports(name);
  acknowledgeReport: PartitioningDriver['acknowledgeReport'] = (name, id) =>
    this.of(name).acknowledgeReport(name, id);

  /** A NIC moves only between LCs of one driver. */
  async moveNic(from: LcSpec, nicName: string, to: LcSpec): Promise<string> {
    const driver = this.of(from.name);
    if (driver !== this.of(to.name))
      throw new UnderstudyError(
        'DRIVER_MISMATCH',
        `Cannot move NIC ${nicName} from "${from.name}" to "${to.name}": they run on different drivers`,
        { hint: 'Use the swap-address or instant switch method between LCs of different drivers.' },
      );
    return driver.moveNic(from, nicName, to);
  }
}
