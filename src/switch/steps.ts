/**
 * The steps of each switch method, in order. Every step's `run` and `undo` is idempotent (safe to
 * repeat after a crash) and touches only what the step itself changed. Steps flagged `cleanup` come
 * after the point of no return (LC2 passed its health check): they are finished, never undone.
 */
import { UnderstudyError, sleep, type Logger } from '../core/index.ts';
import { armCut, cutControl, type ArmedCut } from './cut.ts';
import { checkHealth, type HealthReport } from './health.ts';
import {
  addAddress,
  announce,
  deviceWithMac,
  hasDevice,
  hostOf,
  installSteer,
  listAddresses,
  promoteSecondaries,
  quietArp,
  restoreArp,
  removeAddress,
  removeSteer,
  requireAddress,
  waitForDrain,
  type SavedSysctls,
} from './net-ops.ts';
import type { FinalSyncPhases, MoveNic, SwitchPlan, SwitchSide } from './types.ts';

/** Facts learned while switching that later steps or undos need; journalled after every step. */
export interface SwitchFacts {
  movedNic?: string;
  lc1HadNewAddress?: boolean;
  /** move-nic: LC1's addresses other than the service address; they go to the NIC LC1 gets back. */
  lc1Addresses?: string[];
  /** move-nic: LC2's own addresses, carried from its old NIC to the moved one. */
  lc2Addresses?: string[];
  /** move-nic: the name LC2's old NIC has in LC1. */
  returnedNic?: string;
  /** ARP sysctls of each LC before the switch quietened them. */
  arpFrom?: SavedSysctls;
  arpTo?: SavedSysctls;
  drainMs?: number;
  leftOnLc1?: number;
  holdStartedAt?: number;
  /** Held and instant: when LC2 took the address, i.e. when new connections began to reach it. */
  reachableAt?: number;
  holdMs?: number;
  syncMs?: number;
  /** Stateful: how the cut is made (decided before the switch, see cutGate). */
  cut?: 'writes' | 'connections';
  /** LC2's own address, where LC1's quiesced service passes requests of connections that carried none. */
  lc2Address?: string;
  /** How LC2 holds new requests: its service holds them (cut protocol), or it is stopped (SIGSTOP). */
  holdBy?: 'service' | 'signal';
  gateMs?: number;
  gateRetries?: number;
  /** The writes in flight at the cut outlasted maxHoldMs (waited for). */
  holdExceeded?: boolean;
  /** Stateful: the final sync's preparation before the hold (see SwitchBinding.prepareFinalSync). */
  prepareMs?: number;
  preparePhases?: FinalSyncPhases;
  syncPhases?: FinalSyncPhases;
  syncEndedAt?: number;
  releaseMs?: number;
  reloadMs?: number;
  /** Instant stateful: the time the journal's writes took inside the hold. */
  holdJournalMs?: number;
  /** After the release: LC1 finishing its last requests while LC2 serves. */
  finishMs?: number;
}

export interface StepContext {
  plan: SwitchPlan;
  from: SwitchSide;
  to: SwitchSide;
  moveNic: MoveNic;
  finalSync?: () => Promise<FinalSyncPhases | void>;
  prepareFinalSync?: () => Promise<FinalSyncPhases | void>;
  facts: SwitchFacts;
  logger: Logger;
  /** arping processes still lingering; awaited at the end of the switch. */
  background: Promise<void>[];
  /**
   * Cut actions sent ahead of time by the hold (quiesce of LC1, release of LC2), so that inside the
   * hold they cost no process start; withdrawn when the switch ends without firing them.
   */
  armed?: { quiesce?: ArmedCut; release?: ArmedCut };
  /** Told the outcome of each health check the switch makes. */
  onHealth?: (report: HealthReport) => void;
}

export interface Step {
  name: string;
  run(c: StepContext): Promise<void>;
  undo?(c: StepContext): Promise<void>;
  /** After the point of no return: finished by recovery, never undone. */
  cleanup?: boolean;
}

const hostAddress = (address: string): string => `${hostOf(address)}/32`;

async function announceFrom(
  c: StepContext,
  side: SwitchSide,
  address: string,
  dev: string,
  options: { waitForFrame?: boolean } = {},
): Promise<void> {
  const { done } = await announce(side, address, dev, options);
  c.background.push(
    done.catch((error: unknown) => c.logger.warn({ err: error, lc: side.name }, 'announcement failed')),
  );
}

/** LC2 accepts packets for the service address (on lo) without answering ARP for it yet. */
const lc2PrivateAddress: Step = {
  name: 'lc2-private-address',
  async run(c) {
    c.facts.arpTo ??= await quietArp(c.to, c.plan.to.nic);
    await addAddress(c.to, hostAddress(c.plan.service.address), 'lo');
  },
  async undo(c) {
    await removeAddress(c.to, hostAddress(c.plan.service.address), 'lo');
    await restoreArp(c.to, c.plan.to.nic, c.facts.arpTo);
  },
};

const lc2PrivateAddressCleanup: Step = {
  name: 'lc2-private-address-cleanup',
  cleanup: true,
  run: lc2PrivateAddress.undo!,
};

const cutByWrites = (c: StepContext): boolean => c.facts.cut === 'writes';

/** LC2's own address on its NIC (not the service address), where LC1 passes late requests. */
async function ownAddress(c: StepContext): Promise<string | undefined> {
  const service = hostOf(c.plan.service.address);
  const own = (await listAddresses(c.to, c.plan.to.nic)).find((a) => hostOf(a) !== service);
  return own ? hostOf(own) : undefined;
}

/**
 * Stateful: LC2 holds new requests until the final sync is in. With the cut protocol its service
 * accepts and parses them and lets them wait; otherwise it is stopped (SIGSTOP) and new connections
 * wait in its accept backlog.
 */
const hold: Step = {
  name: 'hold',
  async run(c) {
    if (cutByWrites(c) && c.facts.holdBy !== 'signal') {
      try {
        await cutControl(c.to, 'hold', { port: c.plan.service.port });
        c.facts.holdBy = 'service';
      } catch (error) {
        c.logger.warn({ lc: c.to.name, err: error }, 'the standby cannot hold requests itself; stopping it');
        c.facts.holdBy = 'signal';
      }
    } else c.facts.holdBy ??= 'signal';
    if (c.facts.holdBy === 'signal') await c.to.signalService('pause');
    if (cutByWrites(c)) {
      const port = c.plan.service.port;
      const armedForMs = c.plan.drainTimeoutMs + 120_000;
      c.facts.lc2Address ??= await ownAddress(c);
      const forwardTo = c.facts.lc2Address ? `${c.facts.lc2Address}:${port}` : undefined;
      c.armed = {
        quiesce: armCut(c.from, 'quiesce', {
          port,
          waitMs: c.plan.cut?.maxHoldMs ?? 100,
          armedForMs,
          forwardTo,
        }),
        ...(c.facts.holdBy === 'service' ? { release: armCut(c.to, 'release', { port, armedForMs }) } : {}),
      };
    }
    // Before anyone can reach LC2 (and be held): the part of the final sync that need not wait for
    // LC1's last write.
    if (c.prepareFinalSync && c.facts.holdStartedAt === undefined) {
      const started = Date.now();
      const prepared = await c.prepareFinalSync();
      c.facts.prepareMs = Date.now() - started;
      if (prepared) c.facts.preparePhases = prepared;
    }
    c.facts.holdStartedAt ??= Date.now();
  },
  async undo(c) {
    if (c.facts.holdBy === 'service') {
      const port = c.plan.service.port;
      await cutControl(c.to, 'release', { port });
      // Undoes what a reversed lc2-takes-address left: LC2 answers its own requests again.
      await cutControl(c.to, 'unquiesce', { port });
      await c.to.signalService('undrain');
    } else await c.to.signalService('resume');
  },
};

const releaseHold: Step = {
  name: 'release-hold',
  async run(c) {
    const started = Date.now();
    if (c.facts.holdBy === 'service') {
      const armed = c.armed?.release;
      const state = armed
        ? await armed.fire()
        : await cutControl(c.to, 'release', { port: c.plan.service.port });
      c.facts.reloadMs = state.reloadMs;
    } else await c.to.signalService('resume');
    const now = Date.now();
    c.facts.releaseMs = now - (c.facts.syncEndedAt ?? started);
    const heldSince = c.facts.reachableAt ?? c.facts.holdStartedAt;
    if (heldSince !== undefined) c.facts.holdMs = now - heldSince;
  },
};

/**
 * The cut's drain, cut by writes: LC1's service starts no new write and closes its keep-alive sockets
 * as they become idle; this resolves when its last write in flight is on disk. Requests that do not
 * write (a slow upload) go on and may finish after LC2 serves (step `drain`). The hold budget is
 * maxHoldMs; writes that outlast it are waited for (an acknowledged write is never lost), up to the
 * drain timeout, and reported.
 */
const quiesce: Step = {
  name: 'quiesce',
  async run(c) {
    const started = Date.now();
    if (!cutByWrites(c)) {
      await drainConnections(c);
      return;
    }
    const port = c.plan.service.port;
    const budget = c.plan.cut?.maxHoldMs ?? 100;
    const armed = c.armed?.quiesce;
    const forwardTo = c.facts.lc2Address ? `${c.facts.lc2Address}:${port}` : undefined;
    let state = armed
      ? await armed.fire()
      : await cutControl(c.from, 'quiesce', { port, waitMs: budget, forwardTo });
    if (!state.quiet) {
      c.facts.holdExceeded = true;
      c.logger.warn(
        { lc: c.from.name, writesInFlight: state.writesInFlight, oldestWriteMs: state.oldestWriteMs },
        'writes in flight outlast the hold budget; waiting for them',
      );
      const left = Math.max(0, c.plan.drainTimeoutMs - (Date.now() - started));
      state = await cutControl(c.from, 'quiesce', { port, waitMs: left, forwardTo });
      if (!state.quiet)
        throw new UnderstudyError(
          'SWITCH_STEP_FAILED',
          `${c.from.name} still had ${state.writesInFlight} write(s) in flight after the drain timeout (${c.plan.drainTimeoutMs} ms)`,
          { details: { lc: c.from.name, ...state } },
        );
    }
    c.facts.drainMs = Date.now() - started;
  },
  async undo(c) {
    if (cutByWrites(c)) await cutControl(c.from, 'unquiesce', { port: c.plan.service.port });
    await c.from.signalService('undrain');
  },
};

/** Drain methods: LC1 passes connections that start from now on to LC2 instead of accepting them. */
const lc1PassNewFlows: Step = {
  name: 'lc1-pass-new-flows',
  async run(c) {
    const { plan } = c;
    await installSteer(c.from, {
      mode: 'new-flows',
      dev: plan.from.nic,
      ...plan.service,
      peerMac: plan.to.mac,
    });
  },
  async undo(c) {
    await removeSteer(c.from);
  },
};

/** LC1's service finishes the requests it accepted and closes its keep-alive connections. */
async function drainConnections(c: StepContext): Promise<number> {
  const started = Date.now();
  await c.from.signalService('drain');
  c.facts.leftOnLc1 = await waitForDrain(c.from, c.plan.service.port, c.plan.drainTimeoutMs);
  const ms = Date.now() - started;
  c.facts.drainMs ??= ms;
  if (c.facts.leftOnLc1 > 0)
    c.logger.warn({ lc: c.from.name, left: c.facts.leftOnLc1 }, 'drain timed out; switching anyway');
  return ms;
}

/**
 * LC1's service finishes the requests it accepted and closes its keep-alive connections. After a cut
 * by writes this comes after the release: LC2 already serves while LC1 finishes (uploads).
 */
const drain: Step = {
  name: 'drain',
  async run(c) {
    const ms = await drainConnections(c);
    if (c.facts.holdStartedAt !== undefined && c.facts.holdMs !== undefined) c.facts.finishMs = ms;
  },
  async undo(c) {
    await c.from.signalService('undrain');
  },
};

/** Stateful: the last incremental copy of the application disk, after LC1's last write, before LC2 serves. */
const finalSync: Step = {
  name: 'final-sync',
  async run(c) {
    if (!c.finalSync)
      throw new UnderstudyError(
        'SWITCH_PLAN_INVALID',
        'A stateful switch needs a final sync of the application disk',
        {},
      );
    const started = Date.now();
    const phases = await c.finalSync();
    c.facts.syncEndedAt = Date.now();
    c.facts.syncMs = c.facts.syncEndedAt - started;
    if (phases) c.facts.syncPhases = phases;
  },
};

const healthAfter: Step = {
  name: 'health-after',
  async run(c) {
    const target = hostOf(c.plan.service.address);
    const outcome = await checkHealth(c.to, c.plan.health, target, c.plan.service.port);
    c.onHealth?.({
      ...outcome,
      lc: c.to.name,
      phase: 'after',
      check: c.plan.health.kind,
      target,
      port: c.plan.service.port,
    });
    if (!outcome.ok) {
      throw new UnderstudyError(
        'SWITCH_HEALTH_FAILED',
        `The service on ${c.to.name} failed its check after the switch: ${outcome.detail}`,
        {
          details: { lc: c.to.name, attempts: outcome.attempts },
        },
      );
    }
  },
};

/** LC1's service back to normal: it may serve again after a later switch back. */
const lc1Undrain: Step = {
  name: 'lc1-undrain',
  cleanup: true,
  async run(c) {
    await c.from.signalService('undrain');
    if (cutByWrites(c)) {
      // A service that is gone (stopped after the switch) has nothing to undo.
      await cutControl(c.from, 'unquiesce', { port: c.plan.service.port }).catch((error: unknown) =>
        c.logger.warn({ lc: c.from.name, err: error }, 'could not end the quiesce of the old service'),
      );
    }
  },
};

/** move-nic: clients are first pointed at LC2's own NIC so that no frame meets the NIC while it moves. */
const clientsToLc2Nic: Step = {
  name: 'clients-to-lc2-nic',
  async run(c) {
    await announceFrom(c, c.to, c.plan.service.address, c.plan.to.nic);
  },
  async undo(c) {
    if (await hasDevice(c.from, c.plan.from.nic))
      await announceFrom(c, c.from, c.plan.service.address, c.plan.from.nic);
  },
};

/** The addresses LC1 keeps when its NIC moves: those it holds besides the service address, else its new one. */
async function lc1KeptAddresses(c: StepContext): Promise<string[]> {
  const service = hostOf(c.plan.service.address);
  const own = (await listAddresses(c.from, c.plan.from.nic)).filter((a) => hostOf(a) !== service);
  const fallback = requireAddress(c.plan.from, c.plan.from.lc, c.plan.method);
  c.facts.lc1HadNewAddress ??= own.some((a) => hostOf(a) === hostOf(fallback));
  return own.length > 0 ? own : [fallback];
}

const moveNicStep: Step = {
  name: 'move-nic',
  async run(c) {
    const { nic, mac } = c.plan.from;
    // A crash may have come between the move and the journal: the NIC is found by its MAC.
    c.facts.movedNic ??= (await hasDevice(c.from, nic)) ? undefined : await deviceWithMac(c.to, mac);
    if (c.facts.movedNic && (await hasDevice(c.to, c.facts.movedNic)) && !(await hasDevice(c.from, nic)))
      return;
    c.facts.lc1Addresses ??= await lc1KeptAddresses(c);
    // The NIC goes with the service address only: LC1's own addresses stay LC1's.
    c.facts.movedNic = await c.moveNic({ from: c.from, to: c.to, nic, addresses: [c.plan.service.address] });
    // The address must be usable at once: a moved device comes up without duplicate detection here.
    const held = await listAddresses(c.to, c.facts.movedNic);
    if (!held.some((a) => hostOf(a) === hostOf(c.plan.service.address))) {
      throw new UnderstudyError(
        'SWITCH_STEP_FAILED',
        `${c.to.name} did not get ${c.plan.service.address} with the moved NIC ${nic}`,
        {},
      );
    }
    await announceFrom(c, c.to, c.plan.service.address, c.facts.movedNic);
  },
  async undo(c) {
    const moved = c.facts.movedNic;
    if (moved && (await hasDevice(c.to, moved)) && !(await hasDevice(c.from, c.plan.from.nic))) {
      const lc1Own = (c.facts.lc1Addresses ?? []).filter(
        (a) => c.facts.lc1HadNewAddress !== false || hostOf(a) !== hostOf(c.plan.from.newAddress ?? ''),
      );
      await c.moveNic({
        from: c.to,
        to: c.from,
        nic: moved,
        addresses: [c.plan.service.address, ...lc1Own],
      });
    }
    await announceFrom(c, c.from, c.plan.service.address, c.plan.from.nic);
  },
};

/**
 * move-nic, after the point of no return: LC2 keeps one NIC on the bridge. Its own addresses move
 * from its old NIC to the one that came with the service address (and are announced there), so its
 * old NIC is free to go to LC1.
 */
const lc2AddressesToMovedNic: Step = {
  name: 'lc2-addresses-to-moved-nic',
  cleanup: true,
  async run(c) {
    const moved = c.facts.movedNic;
    if (!moved) throw new UnderstudyError('SWITCH_STEP_FAILED', `The moved NIC of ${c.to.name} is unknown`);
    const service = hostOf(c.plan.service.address);
    const spares = new Set((c.plan.to.spares ?? []).map(hostOf));
    const onOld = (await hasDevice(c.to, c.plan.to.nic)) ? await listAddresses(c.to, c.plan.to.nic) : [];
    c.facts.lc2Addresses ??= onOld.filter((a) => hostOf(a) !== service && !spares.has(hostOf(a)));
    for (const address of c.facts.lc2Addresses) {
      await addAddress(c.to, address, moved);
      await announceFrom(c, c.to, address, moved);
    }
    for (const address of onOld) await removeAddress(c.to, address, c.plan.to.nic);
  },
};

/** move-nic: LC2's old NIC goes to LC1, with LC1's own addresses (or its new one), announced there. */
const lc2NicToLc1: Step = {
  name: 'lc2-nic-to-lc1',
  cleanup: true,
  async run(c) {
    const addresses = c.facts.lc1Addresses ?? [requireAddress(c.plan.from, c.plan.from.lc, c.plan.method)];
    if (await hasDevice(c.to, c.plan.to.nic)) {
      c.facts.returnedNic = await c.moveNic({ from: c.to, to: c.from, nic: c.plan.to.nic, addresses });
    }
    c.facts.returnedNic ??= await deviceWithMac(c.from, c.plan.to.mac);
    const nic = c.facts.returnedNic;
    if (!nic)
      throw new UnderstudyError(
        'SWITCH_STEP_FAILED',
        `${c.plan.to.lc}'s NIC ${c.plan.to.nic} (${c.plan.to.mac}) is in neither ${c.plan.to.lc} nor ${c.plan.from.lc}`,
      );
    for (const address of addresses) {
      await addAddress(c.from, address, nic);
      await announceFrom(c, c.from, address, nic);
    }
  },
};

/** LC2 serves: the spare addresses earlier switches gave it are let go (instant, swap-address). */
const lc2ReleaseSpares: Step = {
  name: 'lc2-release-spares',
  cleanup: true,
  async run(c) {
    if (!c.plan.to.spares?.length) return;
    await promoteSecondaries(c.to, c.plan.to.nic);
    for (const address of c.plan.to.spares) await removeAddress(c.to, address, c.plan.to.nic);
  },
};

/** The steering table LC1 kept is bound to a NIC it no longer has (move-nic) or is no longer needed. */
const lc1SteerCleanup: Step = {
  name: 'lc1-steer-cleanup',
  cleanup: true,
  async run(c) {
    await sleep(c.plan.method === 'swap-address' ? c.plan.tailMs : 0);
    await removeSteer(c.from);
  },
};

const lc1NewAddress: Step = {
  name: 'lc1-new-address',
  async run(c) {
    const address = requireAddress(c.plan.from, c.plan.from.lc, c.plan.method);
    c.facts.lc1HadNewAddress ??= (await listAddresses(c.from, c.plan.from.nic)).some(
      (a) => hostOf(a) === hostOf(address),
    );
    await promoteSecondaries(c.from, c.plan.from.nic);
    await addAddress(c.from, address, c.plan.from.nic);
  },
  async undo(c) {
    if (c.facts.lc1HadNewAddress === false)
      await removeAddress(
        c.from,
        requireAddress(c.plan.from, c.plan.from.lc, c.plan.method),
        c.plan.from.nic,
      );
  },
};

/** swap-address: LC1 gives the address up and passes on every packet still sent to it. */
const lc1ReleaseAddress: Step = {
  name: 'lc1-release-address',
  async run(c) {
    const { plan } = c;
    await installSteer(c.from, {
      mode: 'all',
      dev: plan.from.nic,
      ...plan.service,
      peerMac: plan.to.mac,
    });
    await removeAddress(c.from, plan.service.address, plan.from.nic);
  },
  async undo(c) {
    const { plan } = c;
    await addAddress(c.from, plan.service.address, plan.from.nic);
    await announceFrom(c, c.from, plan.service.address, plan.from.nic);
  },
};

const lc2TakesAddress: Step = {
  name: 'lc2-takes-address',
  async run(c) {
    await addAddress(c.to, c.plan.service.address, c.plan.to.nic);
    // From here clients reach LC2: a held LC2 holds them from now on (instant; the other methods pass
    // new connections to LC2 earlier, so their hold counts from the hold itself).
    const held = c.plan.method === 'instant' && c.facts.holdStartedAt !== undefined;
    if (held) c.facts.reachableAt ??= Date.now();
    // Inside the hold of a cut by writes nothing waits for the frame to be out: a client that still
    // sends to LC1 reaches it there (the address stays on LC1's lo), and LC1, once quiesced, passes
    // the requests of such new connections to LC2 (forwardTo), where they are held like the others.
    const passedOn = held && cutByWrites(c) && c.facts.lc2Address !== undefined;
    await announceFrom(c, c.to, c.plan.service.address, c.plan.to.nic, { waitForFrame: !passedOn });
  },
  async undo(c) {
    if (c.facts.holdBy === 'service' && cutByWrites(c) && c.plan.from.newAddress) {
      // LC2's service holds the requests of the connections it accepted: before LC2 lets the address
      // go, they (and any that still reach LC2) are passed to LC1, and LC2 waits until they are answered.
      const port = c.plan.service.port;
      const forwardTo = `${hostOf(c.plan.from.newAddress)}:${port}`;
      await cutControl(c.to, 'quiesce', { port, waitMs: 0, forwardTo });
      await cutControl(c.to, 'release', { port });
      await drainStandby(c);
    } else if (await servesItsOwnConnections(c)) {
      await finishOwnConnections(c);
      await removeAddress(c.to, c.plan.service.address, c.plan.to.nic);
      await c.to
        .signalService('undrain')
        .catch((error: unknown) =>
          c.logger.warn({ lc: c.to.name, err: error }, 'could not end the drain of the standby'),
        );
      return;
    }
    await removeAddress(c.to, c.plan.service.address, c.plan.to.nic);
  },
};

/**
 * instant, when the switch is reversed: LC2 holds the service address and its service answers the
 * connections that reached it (not held, or released).
 */
async function servesItsOwnConnections(c: StepContext): Promise<boolean> {
  if (c.plan.method !== 'instant') return false;
  if (c.facts.holdBy !== undefined && c.facts.releaseMs === undefined) return false;
  const held = await listAddresses(c.to, c.plan.to.nic);
  return held.some((a) => hostOf(a) === hostOf(c.plan.service.address));
}

/**
 * instant, reversed: before LC2 lets the address go, new connections are passed to LC1 (which still
 * holds the address on lo) and LC2's service finishes the connections it accepted. Cut instead, their
 * next packets would reach LC1, which knows none of them: it resets them, or — when it still has a
 * TIME-WAIT socket of an earlier connection on the same client port — answers only with an ACK, and
 * the client waits for a response until its timeout. Best effort: the address leaves LC2 in any case.
 */
async function finishOwnConnections(c: StepContext): Promise<void> {
  const { plan } = c;
  try {
    await installSteer(c.to, {
      mode: 'own-flows',
      dev: plan.to.nic,
      ...plan.service,
      peerMac: plan.from.mac,
    });
    await drainStandby(c);
  } catch (error) {
    c.logger.warn(
      { lc: c.to.name, err: error },
      'the standby could not finish its connections; it lets the address go',
    );
  }
}

/** LC2's service drains; waits (up to the drain timeout) until its connections have closed. */
async function drainStandby(c: StepContext): Promise<void> {
  await c.to.signalService('drain');
  const left = await waitForDrain(c.to, c.plan.service.port, c.plan.drainTimeoutMs);
  if (left > 0)
    c.logger.warn({ lc: c.to.name, left }, 'connections still open on the standby as it lets the address go');
}

const lc1AnnounceNew: Step = {
  name: 'lc1-announce-new',
  async run(c) {
    await announceFrom(
      c,
      c.from,
      requireAddress(c.plan.from, c.plan.from.lc, c.plan.method),
      c.plan.from.nic,
    );
  },
};

/** instant: LC2 passes packets of flows it did not see start (LC1's accepted ones) on to LC1. */
const lc2PassOldFlows: Step = {
  name: 'lc2-pass-old-flows',
  async run(c) {
    const { plan } = c;
    await installSteer(c.to, {
      mode: 'old-flows',
      dev: plan.to.nic,
      ...plan.service,
      peerMac: plan.from.mac,
    });
  },
  async undo(c) {
    await removeSteer(c.to);
  },
};

/** instant: LC1 keeps the address only on lo (replies still carry it) and stops answering ARP for it. */
const lc1PrivateAddress: Step = {
  name: 'lc1-private-address',
  async run(c) {
    const { plan } = c;
    await addAddress(c.from, hostAddress(plan.service.address), 'lo');
    c.facts.arpFrom ??= await quietArp(c.from, plan.from.nic);
    await removeAddress(c.from, plan.service.address, plan.from.nic);
  },
  async undo(c) {
    const { plan } = c;
    await addAddress(c.from, plan.service.address, plan.from.nic);
    await restoreArp(c.from, plan.from.nic, c.facts.arpFrom);
    await removeAddress(c.from, hostAddress(plan.service.address), 'lo');
    await announceFrom(c, c.from, plan.service.address, plan.from.nic);
  },
};

/** instant: LC1 has finished its connections; the forwarding is lifted and LC1 lets the address go. */
const lift: Step = {
  name: 'lift',
  cleanup: true,
  async run(c) {
    await removeSteer(c.to);
    await removeAddress(c.from, hostAddress(c.plan.service.address), 'lo');
    await restoreArp(c.from, c.plan.from.nic, c.facts.arpFrom);
  },
};

/** The steps of a method, in order. */
export function stepsFor(plan: SwitchPlan): Step[] {
  const stateful = (steps: Step[]): Step[] => (plan.stateful ? steps : []);
  switch (plan.method) {
    case 'move-nic':
      return [
        lc2PrivateAddress,
        ...stateful([hold]),
        lc1PassNewFlows,
        drain,
        ...stateful([finalSync]),
        clientsToLc2Nic,
        moveNicStep,
        ...stateful([releaseHold]),
        healthAfter,
        lc1SteerCleanup,
        lc2PrivateAddressCleanup,
        lc2AddressesToMovedNic,
        lc2NicToLc1,
        lc1Undrain,
      ];
    case 'swap-address':
      return [
        lc2PrivateAddress,
        ...stateful([hold]),
        lc1PassNewFlows,
        drain,
        ...stateful([finalSync]),
        lc1NewAddress,
        lc1ReleaseAddress,
        lc2TakesAddress,
        lc1AnnounceNew,
        ...stateful([releaseHold]),
        healthAfter,
        lc2PrivateAddressCleanup,
        lc1SteerCleanup,
        lc2ReleaseSpares,
        lc1Undrain,
      ];
    case 'instant':
      if (plan.stateful && plan.cut)
        // LC2 is held only from just before it takes the address; LC1 stops writing once LC2 holds new
        // requests; LC2 serves as soon as the sync is in, while LC1 finishes what does not write.
        return [
          lc2PassOldFlows,
          lc1NewAddress,
          lc1PrivateAddress,
          hold,
          lc2TakesAddress,
          quiesce,
          finalSync,
          releaseHold,
          drain,
          healthAfter,
          lift,
          lc2ReleaseSpares,
          lc1Undrain,
        ];
      return [
        ...stateful([hold]),
        lc2PassOldFlows,
        lc1NewAddress,
        lc1PrivateAddress,
        lc2TakesAddress,
        drain,
        ...stateful([finalSync]),
        ...stateful([releaseHold]),
        healthAfter,
        lift,
        lc2ReleaseSpares,
        lc1Undrain,
      ];
  }
}
