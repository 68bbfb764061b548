/**
 * What the API can do, as calls to the same operations the CLI makes (the manager's LC lifecycle,
 * the patch run's orchestrator, the catalogue, the switch journal, the monitor). Route handlers stay
 * thin: they validate, call one of these, and answer.
 *
 * Patch runs started here go on in the background of the daemon: `startRun` answers with the run's
 * id as soon as the run exists, its steps arrive on the event log, and `cancelRun` aborts it as long
 * as its switch (the point of no return) has not started.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { UnderstudyError, isUnderstudyError, type Logger } from '../core/index.ts';
import { checkPatchFile, type Catalogue, type PatchFormat } from '../catalogue/index.ts';
import type { EventLog } from '../events/index.ts';
import { hostStatus, type HostStatus } from '../host/index.ts';
import { listImages, type ImageRecord } from '../images/index.ts';
import { findStandbys, getLc, hostCapacity, listLcs, type StandbySearchResult } from '../inventory/index.ts';
import {
  createLc,
  describeLcs,
  destroyLc,
  startLc,
  type App,
  type HostContext,
  type LcView,
} from '../app/index.ts';
import {
  getRun,
  listRuns,
  resumeRun,
  rollbackRun,
  startRun,
  treeChecksSettled,
  treeMismatchOf,
  type RunDeps,
  type RunEvent,
  type RunOptions,
  type RunRecord,
  checkServiceHealth,
  type ServiceHealth,
  type ServiceHealthQuery,
} from '../run/index.ts';
import { SwitchJournal, type SwitchRecord, type SwitchRequest } from '../switch/index.ts';
import { createImageBuilds, type ImageBuildRequest, type StartedImageBuild } from './image-builds.ts';
import { createSwitchOperations, type StartedSwitch, type SwitchOperations } from './switches.ts';
import type { z } from 'zod';
import type { lcCreateBody } from './contracts.ts';
import { createLcAdminOperations, type LcAdminOperations } from './lc-admin.ts';
import { createHostAdminOperations, type HostAdminOperations } from './host-admin.ts';

export interface OperationsDeps {
  /** The store the composition root opened. */
  manager: Pick<App, 'stateDir' | 'db'>;
  /** Present when the host is initialised; LC lifecycle and patch runs need it. */
  host?: HostContext;
  catalogue: Catalogue;
  events: EventLog;
  logger: Logger;
}

/** Copy progress arrives many times a second: the log keeps at most one byte count per step and interval. */
const noteIntervalMs = 250;

/** Writes a run's events to the event log (steps and switch phases always, byte counts at most 4 a second per step). */
export function runEventRecorder(events: EventLog): (event: RunEvent) => void {
  const lastNote = new Map<string, number>();
  return (event) => {
    const base = { runId: event.runId };
    if (event.health) {
      events.append({
        ...base,
        lc: event.health.lc,
        type: 'health',
        data: { step: event.step, ...event.health },
      });
      return;
    }
    if (event.state === 'note') {
      if (event.step === 'run') {
        events.append({ ...base, type: 'run.state', data: { state: 'running', message: event.message } });
        return;
      }
      // Byte counts are throttled; every other note (a switch phase) is kept.
      if (event.progress && 'bytesDone' in event.progress) {
        const key = `${event.runId}/${event.step}`;
        const now = Date.now();
        if (now - (lastNote.get(key) ?? 0) < noteIntervalMs) return;
        lastNote.set(key, now);
      }
      events.append({
        ...base,
        type: 'run.note',
        data: {
          step: event.step,
          message: event.message ?? '',
          ...(event.progress ? { progress: event.progress } : {}),
        },
      });
      return;
    }
    lastNote.delete(`${event.runId}/${event.step}`);
    events.append({
      ...base,
      type: 'run.step',
      data: {
        step: event.step,
        state: event.state,
        ...(event.durationMs === undefined ? {} : { durationMs: Math.round(event.durationMs) }),
        ...(event.message ? { message: event.message.split('\n')[0] } : {}),
      },
    });
  };
}

export type LcCreateInput = z.output<typeof lcCreateBody>;

export interface Operations extends LcAdminOperations, HostAdminOperations {
  host(): Promise<HostStatus & { capacity: ReturnType<typeof hostCapacity> }>;
  images(): ImageRecord[];
  lcs(): Promise<LcView[]>;
  lc(name: string): Promise<LcView & { usage?: unknown }>;
  createLc(input: LcCreateInput): Promise<LcView>;
  startLc(name: string, options: { wait: boolean; timeoutMs: number }): Promise<unknown>;
  stopLc(name: string, options: { timeoutMs: number }): Promise<unknown>;
  destroyLc(name: string, options: { force: boolean }): Promise<void>;
  standbyFor(name: string): StandbySearchResult;
  /** The health of the LC's declared service, checked once (src/run/service-health.ts). */
  serviceHealth(name: string, query: ServiceHealthQuery): Promise<ServiceHealth>;
  addPatch(input: {
    name: string;
    categories: string[];
    format: string;
    content: Buffer;
    sha256?: string;
    description?: string;
  }): Promise<unknown>;
  /** Sets or clears "apply at next run" of a registered patch for an existing LC. */
  markNextRun(input: { patch: string; lc: string; on: boolean }): ReturnType<Catalogue['markNextRun']>;
  runs(filter: { lc?: string }): RunRecord[];
  run(id: string): RunRecord & { driven: boolean };
  startRun(options: RunOptions): Promise<RunRecord>;
  resumeRun(id: string): Promise<RunRecord>;
  rollbackRun(id: string): Promise<RunRecord>;
  cancelRun(id: string): RunRecord;
  /** Resolves when every run this process drives has finished (for shutdown and tests). */
  settled(): Promise<void>;
  /**
   * The daemon shuts down: every run it drives stops at its next step boundary and is handed to the
   * recovery of the next start; resolves when they all stopped.
   */
  stop(): Promise<void>;
  switches(): SwitchRecord[];
  switchRecord(id: string): SwitchRecord;
  /** Starts a switch on its own (as `understudy switch`); resolves once its first phase ended. */
  startSwitch(request: SwitchRequest): Promise<StartedSwitch>;
  /** Starts an image build in the background; resolves once it reported its first progress. */
  buildImage(request: ImageBuildRequest): Promise<StartedImageBuild>;
  /** Switches on their own going on now in this process. */
  activeSwitches(): ReturnType<SwitchOperations['active']>;
}

const noHost = (): UnderstudyError =>
  new UnderstudyError('HOST_NOT_INITIALISED', 'The host has no storage pool or network yet', {
    hint: 'Run `understudy host init`, then restart `understudy serve`.',
  });

export function createOperations(deps: OperationsDeps): Operations {
  const { manager, catalogue, events, logger } = deps;
  const record = runEventRecorder(events);
  /** Runs this process drives, by id. */
  const driven = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** Aborted when the daemon shuts down: runs stop at their next step boundary. */
  const shutdown = new AbortController();

  const requireHost = (): HostContext => {
    if (!deps.host) throw noHost();
    return deps.host;
  };
  const switchOps = createSwitchOperations({ db: manager.db, host: requireHost, events, logger });
  const imageBuilds = createImageBuilds({ db: manager.db, stateDir: manager.stateDir, events, logger });

  /**
   * Starts `work` in the background and resolves with the run's record once its id is known (the
   * first event), or rejects with the error of a run that failed before it existed.
   */
  async function drive(
    knownId: string | null,
    work: (runDeps: RunDeps) => Promise<RunRecord>,
  ): Promise<RunRecord> {
    const host = requireHost();
    const controller = new AbortController();
    let id = knownId;
    let announce: (id: string) => void = () => undefined;
    const idKnown = new Promise<string>((resolve) => (announce = resolve));
    const runDeps: RunDeps = {
      db: manager.db,
      host,
      catalogue,
      logger,
      signal: controller.signal,
      stop: shutdown.signal,
      onEvent: (event) => {
        if (id === null) {
          id = event.runId;
          driven.set(id, entry);
        }
        announce(event.runId);
        record(event);
      },
    };
    const entry = { controller, done: Promise.resolve() };
    const outcome = work(runDeps).then(
      (run) => ({ ok: true as const, run }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    entry.done = outcome
      .then(async (o) => {
        if (id === null) return;
        driven.delete(id);
        // The run's whole-tree check (after a stateful switch) reports before the run's end.
        await treeChecksSettled(id);
        const run = getRun(manager.db, id);
        const error = o.ok ? undefined : o.error;
        const mismatch = treeMismatchOf(run);
        events.append({
          runId: id,
          lc: run.lc,
          type: 'run.state',
          data: {
            state: run.state,
            ...(mismatch ? { treeCheck: 'mismatch', mismatch } : {}),
            ...(o.ok ? {} : { error: error instanceof Error ? error.message : String(error) }),
            ...(isUnderstudyError(error) ? { code: error.code } : {}),
          },
        });
        if (!o.ok) logger.warn({ runId: id, err: error }, 'patch run ended with an error');
      })
      // The run is over either way; a record that cannot be read back must not take the daemon down.
      .catch((error: unknown) =>
        logger.error({ runId: id, err: error }, 'the end of a patch run could not be recorded'),
      );
    if (knownId !== null) {
      driven.set(knownId, entry);
      announce(knownId);
    }
    const first = await Promise.race([idKnown, outcome.then((o) => o)]);
    if (typeof first === 'string') return getRun(manager.db, first);
    if (!first.ok) throw first.error;
    return first.run;
  }

  return {
    ...createLcAdminOperations({ db: manager.db, stateDir: manager.stateDir, catalogue, requireHost }),
    ...createHostAdminOperations({
      db: manager.db,
      stateDir: manager.stateDir,
      requireHost,
      events: deps.events,
    }),
    async host() {
      return { ...(await hostStatus(manager.db, manager.stateDir)), capacity: hostCapacity() };
    },
    images: () => listImages(manager.db),
    lcs: () => describeLcs(manager.db, deps.host),
    async lc(name) {
      getLc(manager.db, name);
      const view = (await describeLcs(manager.db, deps.host)).find((v) => v.name === name);
      const usage =
        deps.host && view && view.status.state !== 'stopped'
          ? await deps.host.driver.usage(name).catch(() => undefined)
          : undefined;
      return { ...(view as LcView), usage };
    },
    async createLc(input) {
      const host = requireHost();
      const { start, ...request } = input;
      await createLc(manager.db, host, request);
      if (start) await startLc(manager.db, host, request.name);
      return this.lc(request.name);
    },
    async startLc(name, options) {
      return startLc(manager.db, requireHost(), name, options);
    },
    async stopLc(name, options) {
      getLc(manager.db, name);
      return requireHost().driver.stop(name, options);
    },
    async destroyLc(name, options) {
      await destroyLc(manager.db, requireHost(), name, options);
    },
    standbyFor: (name) => findStandbys(getLc(manager.db, name), listLcs(manager.db)),
    serviceHealth: (name, query) => checkServiceHealth({ db: manager.db, host: deps.host, lc: name, query }),
    async addPatch(input) {
      // The catalogue registers files: the upload goes to a private temp file first.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'understudy-upload-'));
      try {
        // Named after the patch so that a check's error message names what was uploaded.
        const file = path.join(dir, input.name.replace(/[^A-Za-z0-9._+-]/g, '_'));
        fs.writeFileSync(file, input.content, { mode: 0o600 });
        const actual = createHash('sha256').update(input.content).digest('hex');
        if (input.sha256 && input.sha256 !== actual)
          throw new UnderstudyError(
            'PATCH_HASH_MISMATCH',
            `The uploaded patch ${input.name} has sha256 ${actual}, not ${input.sha256}`,
          );
        await checkPatchFile(file, input.format as PatchFormat);
        return await catalogue.registerPatch({
          file,
          name: input.name,
          categories: input.categories as never,
          format: input.format as never,
          sha256: actual,
          description: input.description,
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    markNextRun({ patch, lc, on }) {
      catalogue.getPatch(patch);
      getLc(manager.db, lc);
      return catalogue.markNextRun(patch, lc, on);
    },
    runs: (filter) => listRuns(manager.db).filter((r) => !filter.lc || r.lc === filter.lc),
    run: (id) => ({ ...getRun(manager.db, id), driven: driven.has(id) }),
    startRun: (options) => drive(null, (runDeps) => startRun(options, runDeps)),
    resumeRun(id) {
      const run = getRun(manager.db, id);
      if (driven.has(id)) return Promise.resolve(run);
      return drive(id, (runDeps) => resumeRun(id, runDeps));
    },
    rollbackRun(id) {
      const run = getRun(manager.db, id);
      if (driven.has(id))
        throw new UnderstudyError('RUN_BUSY', `Run ${id} is still going on in this daemon`, {
          hint: 'Wait for it to finish (GET /v1/events), or cancel it before its switch.',
        });
      if (run.state !== 'switched' && run.state !== 'rolling-back')
        throw new UnderstudyError(
          'RUN_NOT_SWITCHED',
          `Run ${id} is ${run.state}; only a switched run can be rolled back`,
        );
      return drive(id, (runDeps) => rollbackRun(id, runDeps));
    },
    cancelRun(id) {
      const run = getRun(manager.db, id);
      const entry = driven.get(id);
      const switchStep = run.steps.find((s) => s.name === 'switch');
      if (run.state !== 'running' || !entry || (switchStep && switchStep.state !== 'pending')) {
        const pastSwitch = run.state === 'switched' || (switchStep && switchStep.state !== 'pending');
        throw new UnderstudyError(
          'RUN_NOT_CANCELLABLE',
          `Run ${id} cannot be cancelled: ${
            run.state === 'running' && pastSwitch
              ? 'its switch has started (the point of no return); it only rolls forward'
              : run.state !== 'running'
                ? `it is ${run.state}`
                : 'another process drives it'
          }`,
          {
            hint: pastSwitch
              ? `Let it finish, then move the service back with \`understudy rollback ${id}\` (POST /v1/runs/${id}/rollback).`
              : run.state === 'running'
                ? 'Only the process driving a run can cancel it: the daemon for runs it started.'
                : 'Nothing to cancel.',
          },
        );
      }
      entry.controller.abort();
      events.append({ runId: id, lc: run.lc, type: 'run.state', data: { state: 'cancelling' } });
      return getRun(manager.db, id);
    },
    async settled() {
      await Promise.all([...driven.values()].map((d) => d.done));
      await switchOps.settled();
      await imageBuilds.settled();
    },
    async stop() {
      shutdown.abort();
      await Promise.all([...driven.values()].map((d) => d.done));
      await switchOps.settled();
      await imageBuilds.stop();
    },
    switches: () => new SwitchJournal(manager.db).list(100),
    switchRecord(id) {
      const record = new SwitchJournal(manager.db).get(id);
      if (!record)
        throw new UnderstudyError('SWITCH_NOT_FOUND', `There is no switch "${id}"`, {
          hint: 'GET /v1/switches lists them.',
        });
      return record;
    },
    startSwitch: (request) => switchOps.start(request),
    activeSwitches: () => switchOps.active(),
    buildImage: (request) => imageBuilds.start(request),
  };
}
