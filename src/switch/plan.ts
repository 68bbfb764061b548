/** Validates a switch plan once into its complete form (defaults filled in). */
import { UnderstudyError } from '../core/index.ts';
import { defaultHealthCheck } from './health.ts';
import {
  switchMethods,
  type CutPolicy,
  type SwitchMethod,
  type SwitchPlan,
  type SwitchPlanInput,
} from './types.ts';

/** The cut by default: wait for LC1's writes (not its connections), hold new requests at most 100 ms. */
export const defaultCut: CutPolicy = {
  kind: 'writes',
  maxHoldMs: 100,
  onSlowWrites: 'wait',
  retries: 20,
  retryIntervalMs: 250,
};

const cidrPattern = /^198\.(1[89])\.\d{1,3}\.\d{1,3}\/\d{1,2}$|^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
const macPattern = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function invalid(message: string): UnderstudyError {
  return new UnderstudyError('SWITCH_PLAN_INVALID', message);
}

export function isSwitchMethod(value: string): value is SwitchMethod {
  return (switchMethods as readonly string[]).includes(value);
}

export function parseSwitchMethod(value: string): SwitchMethod {
  if (!isSwitchMethod(value)) {
    throw new UnderstudyError('SWITCH_METHOD_UNKNOWN', `Unknown switch method "${value}"`, {
      hint: `Use one of: ${switchMethods.join(', ')}.`,
    });
  }
  return value;
}

export function resolvePlan(input: SwitchPlanInput): SwitchPlan {
  const method = parseSwitchMethod(input.method);
  const { address, port } = input.service;
  if (!cidrPattern.test(address))
    throw invalid(
      `The service address "${address}" is not an IPv4 address with a prefix (e.g. 198.18.0.10/24)`,
    );
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw invalid(`The service port ${String(port)} is not a TCP port`);
  for (const [side, mac] of [
    ['from', input.from.mac],
    ['to', input.to.mac],
  ] as const) {
    if (!macPattern.test(mac.toLowerCase())) throw invalid(`The ${side} MAC "${mac}" is not a MAC address`);
  }
  if (input.from.lc === input.to.lc) throw invalid(`The switch goes from ${input.from.lc} to itself`);
  const next = input.from.newAddress;
  if (next !== undefined) {
    if (!cidrPattern.test(next))
      throw invalid(`The new address "${next}" of ${input.from.lc} is not an IPv4 address with a prefix`);
    if (next.split('/')[0] === address.split('/')[0])
      throw invalid(`The new address of ${input.from.lc} is the service address ${address}`);
  }
  const plan: SwitchPlan = {
    ...input,
    method,
    from: { ...input.from, mac: input.from.mac.toLowerCase() },
    to: { ...input.to, mac: input.to.mac.toLowerCase() },
    health: input.health ?? defaultHealthCheck,
    drainTimeoutMs: input.drainTimeoutMs ?? 10_000,
    stateful: input.stateful ?? false,
    tailMs: input.tailMs ?? 1000,
    cut: { ...defaultCut, ...input.cut },
  };
  if (plan.drainTimeoutMs < 0 || plan.tailMs < 0)
    throw invalid('drainTimeoutMs and tailMs must not be negative');
  const cut = plan.cut!;
  if (cut.kind !== 'writes' && cut.kind !== 'connections')
    throw invalid(`The cut "${String(cut.kind)}" is not writes or connections`);
  if (!['wait', 'proceed', 'abort'].includes(cut.onSlowWrites))
    throw invalid(`onSlowWrites "${String(cut.onSlowWrites)}" is not wait, proceed or abort`);
  for (const [name, value] of [
    ['maxHoldMs', cut.maxHoldMs],
    ['retries', cut.retries],
    ['retryIntervalMs', cut.retryIntervalMs],
  ] as const) {
    if (!Number.isInteger(value) || value < 0)
      throw invalid(`${name} must be a whole number >= 0, not ${value}`);
  }
  return plan;
}
