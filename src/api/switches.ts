/**
 * A switch on its own (`POST /v1/switches`, the CLI's `understudy switch` through `--api`) as an
 * operation of the daemon: the same binding, leases and errors as the CLI command, run in the
 * background with every phase on the event log.
 *
 * Events: `switch.phase` for each phase that ended (with its duration), `health` for each health
 * check (the standby's before the switch, the service's after it), then one `switch.state` when the
 * switch is over (`switched`, `reversed` or `failed`, with the error's code). All carry `from`, `to`
 * and, once the switch journal has its record, `switchId`.
 */
import { UnderstudyError, createOwner, isUnderstudyError, type Logger } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { releaseLeases, takeLeases } from '../store/index.ts';
import type { EventLog } from '../events/index.ts';
import type { HostContext } from '../app/index.ts';
import { bindLcSwitch } from '../run/index.ts';
import {
  SwitchJournal,
  runSwitch,
  stepRecords,
  type HealthReport,
  type SwitchRecord,
  type SwitchRequest,
  type SwitchResult,
} from '../switch/index.ts';

export interface SwitchOperationDeps {
  db: Db;
  /** The host the switch acts on; throws HOST_NOT_INITIALISED without one. */
  host: () => HostContext;
  events: EventLog;
  logger: Logger;
}

export interface StartedSwitch {
  /** The journal's record once it exists (null when the switch ended before its first phase did). */
  switch: SwitchRecord | null;
  /** The switch's events are the `switch.*` events after this id with its `from` and `to`. */
  eventsAfter: number;
  /** Present when the switch already ended. */
  result?: SwitchResult;
}

export interface SwitchOperations {
  /**
   * Leases both LCs and starts the switch. Resolves once its first phase ended (or it ended);
   * rejects with the error of a switch that could not start (RUN_BUSY, SWITCH_ADDRESS_NOT_HELD, a
   * failed preflight, …) — the same errors as `understudy switch`.
   */
  start(request: SwitchRequest): Promise<StartedSwitch>;
  /** Resolves when every switch this process drives has ended. */
  settled(): Promise<void>;
  /** The switches going on now: their LCs and the service's port (for the traffic sampler). */
  active(): { switchId: string | null; from: string; to: string; port: number }[];
}

export function createSwitchOperations(deps: SwitchOperationDeps): SwitchOperations {
  const { db, events, logger } = deps;
  const running = new Set<Promise<unknown>>();
  const inProgress = new Map<
    Promise<unknown>,
    { switchId: () => string | null; from: string; to: string; port: number }
  >();

  return {
    async start(request) {
      const host = deps.host();
      const { from, to, method } = request;
      // Each switch has its own owner: the leases of this daemon's runs block it like anyone else's.
      const owner = createOwner().id;
      const leases = [`lc:${from}`, `lc:${to}`];
      const held = takeLeases(db, leases, owner, `switch ${from} -> ${to}`);
      if (held)
        throw new UnderstudyError(
          'RUN_BUSY',
          `"${held.resource.slice(3)}" is in use by a live process (${held.purpose}, pid ${held.owner.split(':')[0] ?? '?'})`,
          { hint: 'Wait for it to finish; GET /v1/runs and GET /v1/switches show what runs.' },
        );
      let bound: ReturnType<typeof bindLcSwitch>;
      try {
        bound = bindLcSwitch(db, host, request);
      } catch (error) {
        releaseLeases(db, leases, owner);
        throw error;
      }
      const eventsAfter = events.lastId();
      const journal = new SwitchJournal(db);
      const startedAt = new Date().toISOString();
      let switchId: string | undefined;
      // The journal's record of this switch: the newest one between these LCs begun after startedAt
      // (the leases keep any other switch of them out meanwhile).
      const findRecord = (): SwitchRecord | undefined => {
        if (switchId) return journal.get(switchId);
        const record = journal
          .list(10)
          .find((r) => r.plan.from.lc === from && r.plan.to.lc === to && r.startedAt >= startedAt);
        switchId = record?.id;
        return record;
      };
      let firstPhase: () => void = () => undefined;
      const phaseEnded = new Promise<void>((resolve) => (firstPhase = resolve));
      let phaseStarted = performance.now();
      // The phases inside the hold of a stateful switch are appended once it is released.
      const records = stepRecords();
      const afterStep = (phase: string, id: string): void => {
        const durationMs = Math.round(performance.now() - phaseStarted);
        phaseStarted = performance.now();
        switchId = id;
        records.add(phase, () =>
          events.append({
            type: 'switch.phase',
            lc: from,
            data: { switchId: id, from, to, method, phase, durationMs },
          }),
        );
        firstPhase();
      };
      const work = (async (): Promise<SwitchResult> => {
        try {
          const onHealth = (report: HealthReport): void => {
            events.append({
              type: 'health',
              lc: report.lc,
              data: { switchId: switchId ?? null, from, to, method, ...report },
            });
          };
          const result = await runSwitch(bound.plan, { db, logger, ...bound.binding, afterStep, onHealth });
          await bound.after();
          return result;
        } finally {
          records.flush();
          releaseLeases(db, leases, owner);
        }
      })();
      const ended = work.then(
        (result) => {
          switchId = result.id;
          events.append({
            type: 'switch.state',
            lc: from,
            data: {
              switchId,
              from,
              to,
              method,
              state: result.outcome,
              durationMs: result.durationMs,
              drainMs: result.drainMs,
              result,
            },
          });
          // LC2 serves: its data disks are compared whole with LC1's at the cut, in the background.
          const verify = bound.verify;
          if (verify && result.outcome === 'switched')
            void verify().then(
              (checks) => {
                for (const check of checks) {
                  if (check.result === 'mismatch')
                    logger.error({ switchId: result.id, check }, 'the standby differs from LC1 at the cut');
                  events.append({ type: 'verify.tree', lc: to, data: { switchId: result.id, ...check } });
                }
              },
              (error: unknown) => {
                logger.warn({ switchId: result.id, err: error }, 'the whole-tree check could not run');
                events.append({
                  type: 'verify.tree',
                  lc: to,
                  data: {
                    switchId: result.id,
                    result: 'error',
                    message: error instanceof Error ? error.message : String(error),
                  },
                });
              },
            );
          return { ok: true as const, result };
        },
        (error: unknown) => {
          const record = findRecord();
          events.append({
            type: 'switch.state',
            lc: from,
            data: {
              switchId: switchId ?? null,
              from,
              to,
              method,
              state: record?.state ?? 'failed',
              error: error instanceof Error ? error.message.split('\n')[0] : String(error),
              ...(isUnderstudyError(error) ? { code: error.code } : {}),
            },
          });
          logger.warn({ err: error, switchId, from, to }, 'switch ended with an error');
          return { ok: false as const, error };
        },
      );
      running.add(ended);
      inProgress.set(ended, { switchId: () => switchId ?? null, from, to, port: bound.plan.service.port });
      void ended.finally(() => {
        running.delete(ended);
        inProgress.delete(ended);
      });
      const first = await Promise.race([phaseEnded.then(() => null), ended]);
      if (first === null) return { switch: findRecord() ?? null, eventsAfter };
      // Ended before its first phase did: a switch that never started answers with its error.
      if (!first.ok) {
        if (!findRecord()) throw first.error;
        return { switch: findRecord() ?? null, eventsAfter };
      }
      return { switch: journal.get(first.result.id) ?? null, eventsAfter, result: first.result };
    },
    async settled() {
      await Promise.all([...running]);
    },
    active: () => [...inProgress.values()].map((s) => ({ ...s, switchId: s.switchId() })),
  };
}
