/**
 * The steps of a patch run (Fig. 7), in order. Each step can be run again after a crash and reach the
 * same end (it checks the world first); steps that change the world have an undo, used when a later
 * step before the switch fails: the standby is discarded and LC1, which never stopped serving, is
 * untouched.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, isUnderstudyError, sleep } from '../core/index.ts';
import { copyLive, describeHistory } from '../disk-copy/index.ts';
import { assetsDir } from '../images/index.ts';
import { finishedSwitch, switchOnce } from './switch-once.ts';
import { stepRecords } from '../switch/index.ts';
import { startTreeCheck } from './tree-check.ts';
import { sha256Hex } from '../catalogue/index.ts';
import { lc1, saveFacts, standby, type RunContext } from './context.ts';
import type { RunSwitchResult } from './facts.ts';
import type { OutputKind, StepOutput } from './step-outputs.ts';
import { bindSwitch, catchUpDisks, recordSwitch } from './switch-binding.ts';
import type { DiskSpec } from '../drivers/index.ts';
import { diskRole, disksByRole, getLc, systemRole, type LcRecord } from '../inventory/index.ts';
import { serviceControl, switchHealthOf } from './service-side.ts';
import { runService } from './service.ts';
import { freeAddress, planSwitch } from './switch-plan.ts';
import { parsePatchReport, renderPatchTable, standbyPaths } from './patch-table.ts';
import { scanTree } from './scan.ts';
import { chooseStandby, firstAddress } from './standby-choice.ts';
import { verifyPatchesOnDisk } from './verify-standby.ts';
import { summarizePatchFailure } from './patch-failure.ts';
import { standbyDiskFull } from './disk-full.ts';
import { watchService } from './watch.ts';
import { counterpart, invertDiskMap, systemDiskOf, type DiskMap } from './disk-map.ts';

export interface Step<O = unknown> {
  name: string;
  /** Does the step's work; resolves with its summary, kept with the step. Must be re-runnable. */
  run(c: RunContext): Promise<O>;
  /** Reverses the step's effect on the world (before the switch only). */
  undo?(c: RunContext): Promise<void>;
}

/** A step whose output has the schema of `kind` (the journal validates it when read back). */
export const defineStep = <K extends OutputKind>(_kind: K, step: Step<StepOutput<K>>): Step => step;

async function httpGet(
  c: RunContext,
  lcForNet: string,
  url: string,
): Promise<{ status: number; body: string }> {
  // From inside the standby's own network namespace, the service address of LC1 and the standby's own
  // address are both on the bridge's subnet.
  const out = await c.host.driver.netExec(
    lcForNet,
    ['curl', '-s', '--max-time', '3', '-o', '-', '-w', '\n%{http_code}', url],
    { okCodes: [0, 7, 28, 52, 56] },
  );
  const lines = out.stdout.split('\n');
  const status = Number(lines.pop() ?? 0);
  return { status, body: lines.join('\n') };
}

function versionOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Throws RUN_CANCELLED once the run is cancelled: the step stops there and is undone. */
function throwIfCancelled(c: RunContext, step: string): void {
  if (c.signal?.aborted)
    throw new UnderstudyError('RUN_CANCELLED', `Run ${c.runId} was cancelled during ${step}`);
}

/**
 * Waits for `work`, or rejects with RUN_CANCELLED as soon as the run is cancelled. Only for waits that
 * end by themselves once the step is undone (a wait for the standby to come up ends when the undo
 * stops it); their late outcome is logged, not lost.
 */
async function unlessCancelled<T>(c: RunContext, step: string, work: Promise<T>): Promise<T> {
  const signal = c.signal;
  if (!signal) return work;
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      work.then(
        () => c.logger.debug({ step }, 'a wait ended after the cancel'),
        (error: unknown) => c.logger.debug({ step, err: error }, 'a wait failed after the cancel'),
      );
      reject(new UnderstudyError('RUN_CANCELLED', `Run ${c.runId} was cancelled during ${step}`));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * 701: the standby. `startRun` chooses and claims it in the transaction that records the run; a run
 * recorded without one (before that) chooses it here. Then LC1's version, for the report.
 */
const findStandby = defineStep('find-standby', {
  name: 'find-standby',
  async run(c) {
    if (!c.facts.standby) {
      const choice = chooseStandby({
        db: c.db,
        journal: c.journal,
        runId: c.runId,
        owner: c.owner,
        lc: c.options.lc,
        wanted: c.options.standby,
      });
      c.journal.setStandby(c.runId, choice.lc, c.owner);
      c.facts.standby = choice.lc;
      c.facts.serviceAddress = choice.serviceAddress;
      c.facts.diskMap = choice.diskMap;
    }
    const { versionPath } = runService(c.options);
    if (versionPath) {
      const before = await httpGet(
        c,
        c.options.lc,
        `http://${(c.facts.serviceAddress ?? '').split('/')[0]}:${c.options.port}${versionPath}`,
      );
      c.facts.versionBefore = versionOf(before.body);
    }
    saveFacts(c);
    return { standby: c.facts.standby, versionBefore: c.facts.versionBefore };
  },
});

/** 702: scan LC1's system disk for malicious programs before anything is copied. */
const scan = defineStep('scan', {
  name: 'scan',
  async run(c) {
    if (c.options.skipScan) {
      c.facts.scan = { files: 0, infected: [], database: 'none', skipped: true };
      saveFacts(c);
      return { skipped: true };
    }
    const from = lc1(c);
    const root = c.host.disks.mountpoint({ lc: from, disk: systemDiskOf(from) });
    const result = await scanTree({ root, database: c.options.scanDatabase, signal: c.signal });
    c.facts.scan = {
      files: result.files,
      infected: result.infected.map((i) => `${i.path} (${i.signature})`),
      database: result.database,
    };
    saveFacts(c);
    if (result.infected.length > 0) {
      throw new UnderstudyError(
        'RUN_MALWARE_FOUND',
        `The scan of ${c.options.lc}'s system disk found ${result.infected.length} infected file(s):\n  ${c.facts.scan.infected.join('\n  ')}`,
        {
          hint: 'Nothing was copied. Clean the LC (or restore it), then run the patch again.',
          details: { infected: result.infected },
        },
      );
    }
    return { files: result.files, durationMs: Math.round(result.durationMs), database: result.database };
  },
});

/** The standby must be stopped before its disks are replaced. */
const stopStandby = defineStep('stop-standby', {
  name: 'stop-standby',
  async run(c) {
    const result = await c.host.driver.stop(standby(c).name, { timeoutMs: 15_000 });
    return result;
  },
});

/**
 * 703/704 and every further disk: LC1's disk with `role` copied live onto the standby's disk the run's
 * disk map gives it (see disk-map.ts), the standby's own disk set aside first.
 */
function copyStep(role: string): Step {
  const name = `copy-${role}`;
  /** LC1's disk with the role and the standby's disk that receives it (none: LC1 has no such disk). */
  const pair = (c: RunContext): { from: LcRecord; to: LcRecord; disk: string; onto: string } | undefined => {
    const from = lc1(c);
    const to = standby(c);
    const disk = from.disks.find((d) => diskRole(d) === role);
    if (!disk) return undefined;
    return { from, to, disk: disk.name, onto: counterpart(from, to, disk, c.facts.diskMap).name };
  };
  return defineStep('copy', {
    name,
    async run(c) {
      const disks = pair(c);
      if (!disks) return { skipped: `${c.options.lc} has no ${role} disk` };
      const { from, to, disk, onto } = disks;
      const source = { lc: from, disk };
      const target = { lc: to, disk: onto };
      const jobId = `${c.runId}-${role}`;
      await c.host.disks.removeCopyLeftovers({ from: source, to: target, jobId });
      await c.host.disks.setAside(target, c.runId);
      const device = c.host.disks.device(source);
      const started = performance.now();
      const result = await copyLive(c.host.disks, {
        from: source,
        to: target,
        freezer: {
          freeze: () => c.host.driver.freeze(from.name),
          thaw: () => c.host.driver.thaw(from.name),
        },
        throttle: {
          limit: (bps) => c.host.driver.setWriteLimit(from.name, device, bps),
          lift: () => c.host.driver.setWriteLimit(from.name, device, null),
        },
        verify: true,
        // A data disk is written inside the switch's hold: a tree of its own commits faster there.
        ownTree: role !== systemRole,
        db: c.db,
        jobId,
        label: `${from.name}/${disk} → ${to.name}/${onto}`,
        signal: c.signal,
        logger: c.logger,
        onProgress: (e) => {
          if (e.phase === 'full' && e.bytesDone > 0) void c.crash(name, 'during');
          c.emit({
            step: name,
            state: 'note',
            message: `${e.phase} pass ${e.pass}: ${(e.bytesDone / 1024 ** 2).toFixed(1)} MiB`,
            progress: {
              phase: e.phase,
              pass: e.pass,
              bytesDone: e.bytesDone,
              bytesTotal: e.bytesTotal,
              bytesPerSecond: e.bytesPerSecond,
            },
          });
        },
      }).catch((error: unknown) => {
        throw standbyDiskFull(c, { lc: to, disk: onto, phase: 'copy', error }) ?? error;
      });
      const summary = describeHistory(result.history);
      const entry = {
        disk,
        to: onto,
        jobId,
        summary,
        freezeMs: result.freezeMs,
        convergence: result.convergence,
        durationMs: Math.round(performance.now() - started),
        bytes: result.passes.reduce((s, p) => s + p.bytes, 0),
        // What the step's time went into: each pass, and the check at the cut.
        mode: result.mode,
        passes: result.passes.map((p) => ({
          kind: p.kind,
          bytes: p.bytes,
          ms: Math.round(p.snapshotMs + p.durationMs),
        })),
        ...(result.verification
          ? {
              verification: {
                method: result.verification.method,
                ms: Math.round(result.verification.durationMs),
                bytesRead: result.verification.bytes,
              },
            }
          : {}),
      };
      c.facts.copies = [...(c.facts.copies ?? []).filter((x) => x.disk !== disk), entry];
      saveFacts(c);
      return entry;
    },
    async undo(c) {
      const disks = pair(c);
      if (disks) await c.host.disks.restoreAside({ lc: disks.to, disk: disks.onto }, c.runId);
    },
  });
}

/** 705/706: the patch files, the patch table and the patch execution script, into the standby's system disk. */
const writePatches = defineStep('write-patches', {
  name: 'write-patches',
  async run(c) {
    const to = standby(c);
    const patches = c.options.patches.map((name) => c.catalogue.getPatch(name));
    for (const patch of patches) {
      const data = fs.readFileSync(patch.filePath);
      if (sha256Hex(data) !== patch.sha256) {
        throw new UnderstudyError(
          'RUN_PATCH_CORRUPT',
          `The stored file of patch "${patch.name}" (${patch.filePath}) no longer matches its sha256 ${patch.sha256}`,
          {
            hint: 'Register the patch again from a trusted copy.',
          },
        );
      }
      await c.host.driver.writeFile(to, `${standbyPaths.patches}/${patch.name}`, data, 0o600);
    }
    await c.host.driver.writeFile(to, standbyPaths.table, renderPatchTable(patches));
    const script = fs.readFileSync(path.join(assetsDir, 'patch/understudy-patch'));
    // Every write resolves its path inside the standby's root (the driver's writeFile): a link planted
    // in the copied tree cannot lead out of it.
    const systemd = await c.host.driver.readFile(to, '/etc/systemd/system.conf').then(
      () => true,
      () => false,
    );
    if (systemd) {
      await c.host.driver.writeFile(to, standbyPaths.unitScript, script, 0o755);
      await c.host.driver.writeFile(
        to,
        standbyPaths.unit,
        fs.readFileSync(path.join(assetsDir, 'systemd/understudy-patch.service')),
      );
      await c.host.driver.writeFile(
        to,
        standbyPaths.unitWants,
        '# Pulls the understudy patch unit into the boot (written by the patch manager).\n[Unit]\nWants=understudy-patch.service\n',
      );
    } else {
      await c.host.driver.writeFile(to, standbyPaths.script, script, 0o755);
    }
    return { patches: patches.map((p) => p.name), init: systemd ? 'systemd' : 'rc.d' };
  },
});

/** 707: boot the standby from the copy; its start-up script applies the patches and reports (1201–1207). */
const bootStandby = defineStep('boot-standby', {
  name: 'boot-standby',
  async run(c) {
    const to = standby(c);
    const state = (await c.host.driver.status(to.name)).state;
    if (state === 'stopped' || state === 'crashed') {
      // A report left in the control channel by an earlier boot (a failed run) is not this boot's.
      for (const stale of await c.host.driver.readReports(to.name))
        if (stale.kind === 'patch-report') await c.host.driver.acknowledgeReport(to.name, stale.id);
      await c.host.driver.start(to);
    }
    const deadline = Date.now() + c.options.bootTimeoutMs;
    for (;;) {
      throwIfCancelled(c, 'boot-standby');
      const report = (await c.host.driver.readReports(to.name)).find((r) => r.kind === 'patch-report');
      if (report) {
        let parsed: ReturnType<typeof parsePatchReport>;
        try {
          parsed = parsePatchReport(report.body, c.options.patches);
        } catch (error) {
          await c.host.driver.acknowledgeReport(to.name, report.id); // never read again by a later run
          throw error;
        }
        const entries = parsed.entries;
        if (parsed.restart) c.facts.restartNeeds = parsed.restart;
        const outputs = await Promise.all(
          entries.map(async (e) =>
            (
              await c.host.driver
                .readFile(to, `${standbyPaths.output}/${e.name}.log`)
                .catch(() => Buffer.from(''))
            )
              .toString('utf8')
              .slice(-4096),
          ),
        );
        c.facts.patchResults = entries.map((e, i) => ({ ...e, output: outputs[i] }));
        saveFacts(c);
        await c.host.driver.acknowledgeReport(to.name, report.id);
        break;
      }
      if (c.facts.patchResults) break; // reported before a crash of the manager
      const now = (await c.host.driver.status(to.name)).state;
      if (now === 'crashed' || now === 'stopped')
        throw new UnderstudyError(
          'RUN_STANDBY_BOOT_FAILED',
          `The standby "${to.name}" went ${now} while patching:\n${c.host.driver.consoleTail(to.name)}`,
        );
      if (Date.now() > deadline) {
        throw new UnderstudyError(
          'RUN_STANDBY_TIMEOUT',
          `The standby "${to.name}" did not report its patch results within ${c.options.bootTimeoutMs} ms:\n${c.host.driver.consoleTail(to.name)}`,
          {
            hint: "Read the standby's console log; raise --boot-timeout if the patches are slow.",
          },
        );
      }
      await sleep(100);
    }
    for (const r of c.facts.patchResults ?? []) {
      c.catalogue.recordResult(r.name, to.name, { state: r.result, exitCode: r.exitCode, output: r.output });
    }
    const failed = (c.facts.patchResults ?? []).filter((r) => r.result !== 'ok');
    if (failed.length > 0) {
      for (const r of failed)
        c.catalogue.recordResult(r.name, c.options.lc, {
          state: 'failed',
          exitCode: r.exitCode,
          output: r.output,
        });
      // Packages installed as one transaction share its output: each cause is named once, with its patches.
      const causes = new Map<string, string[]>();
      for (const r of failed) {
        const cause = `(exit ${r.exitCode}): ${summarizePatchFailure(r.output ?? '')}`;
        causes.set(cause, [...(causes.get(cause) ?? []), r.name]);
      }
      const error = new UnderstudyError(
        'RUN_PATCH_FAILED',
        `${failed.length} patch(es) failed on the standby: ${[...causes].map(([cause, names]) => `${names.join(', ')} ${cause}`).join('; ')}`,
        {
          hint: `The standby is discarded; the service stayed on the original LC. Read the whole output with \`understudy run show ${c.runId}\`, fix or replace the patch, and run again.`,
        },
      );
      const output = failed.map((r) => r.output ?? '').join('\n');
      throw standbyDiskFull(c, { lc: to, disk: systemDiskOf(to), phase: 'patch', error, output }) ?? error;
    }
    return {
      results: c.facts.patchResults?.map((r) => ({
        name: r.name,
        result: r.result,
        exitCode: r.exitCode,
        ...(r.deb ? { deb: r.deb } : {}),
      })),
      restart: c.facts.restartNeeds,
    };
  },
  async undo(c) {
    await stopDiscardedStandby(c);
  },
});

/**
 * Stops a standby that is being discarded. Its disks are put back next, so there is nothing to shut
 * down cleanly: a short grace, then the kill (an init still running the patch script at start-up
 * does not answer the stop request, and a cancel should not wait 15 s for it).
 */
async function stopDiscardedStandby(c: RunContext): Promise<void> {
  await c.host.driver.stop(standby(c).name, { timeoutMs: 2000 });
}

/** 708: restart the standby so that the patches take effect. */
const rebootStandby = defineStep('reboot-standby', {
  name: 'reboot-standby',
  async run(c) {
    const to = standby(c);
    const status = await c.host.driver.status(to.name);
    if (c.facts.rebootsBefore === undefined) {
      c.facts.rebootsBefore = status.reboots;
      saveFacts(c);
    }
    if (status.state === 'stopped' || status.state === 'crashed') await c.host.driver.start(to);
    else if (status.reboots <= c.facts.rebootsBefore) await c.host.driver.reboot(to.name);
    await unlessCancelled(
      c,
      'reboot-standby',
      c.host.driver.waitUntilUp(to.name, { timeoutMs: c.options.bootTimeoutMs }),
    );
    return { reboots: (await c.host.driver.status(to.name)).reboots };
  },
  async undo(c) {
    await stopDiscardedStandby(c);
  },
});

/**
 * The standby's report is checked on its system disk (see verify-standby.ts); a patch it reported
 * applied that the disk does not show fails the run (RUN_PATCH_UNVERIFIED) and is recorded as failed.
 */
async function verifyOnDisk(c: RunContext): Promise<{ name: string; outcome: string; detail: string }[]> {
  const to = standby(c);
  try {
    const results = await verifyPatchesOnDisk({
      root: c.host.disks.mountpoint({ lc: to, disk: systemDiskOf(to) }),
      standby: to.name,
      patches: c.options.patches.map((name) => c.catalogue.getPatch(name)),
    });
    return results.map((r) => ({ name: r.name, outcome: r.outcome, detail: r.detail }));
  } catch (error) {
    if (isUnderstudyError(error, 'RUN_PATCH_UNVERIFIED')) {
      const problems = error.details.problems as Record<string, string[]>;
      for (const [name, list] of Object.entries(problems))
        for (const lc of [to.name, c.options.lc])
          c.catalogue.recordResult(name, lc, { state: 'failed', exitCode: -1, output: list.join('\n') });
    }
    throw error;
  }
}

/**
 * 709: the patch results are in and the standby's disk shows them (for a deb patch: the package at the
 * file's version in the standby's dpkg status, and its files), the service's systemd unit is active
 * after the reboot, and the patched service passes its health check at the standby's own address.
 */
const checkStandby = defineStep('check-standby', {
  name: 'check-standby',
  async run(c) {
    const to = standby(c);
    const verified = await verifyOnDisk(c);
    const address = firstAddress(c.db, to.name).split('/')[0] ?? '';
    const service = serviceControl(c.host, to.name, runService(c.options));
    const hint = `The standby is discarded and the service stays on the original LC. Read the service's log above and the patch output (\`understudy run show ${c.runId}\`); fix the patch or the configuration it brings, then run again.`;
    // A unit may still be starting right after the reboot: its health check below waits for it.
    const health = await service.checkHealth(address);
    c.emit({
      step: 'check-standby',
      state: 'note',
      message: `health of ${to.name}: ${health.ok ? 'ok' : 'failed'} (${health.detail})`,
      health: {
        ...health,
        lc: to.name,
        phase: 'standby',
        check: service.service.health.kind,
        target: address,
        port: service.service.ports[0] ?? 80,
      },
    });
    // A systemd unit must be active; a pid-file service is judged by its health check alone.
    const unit = service.service.unit ? await service.isActive() : { active: true, state: 'pid file' };
    if (!unit.active)
      throw new UnderstudyError(
        'RUN_STANDBY_UNHEALTHY',
        `The service "${service.service.name}" (${service.service.unit ?? service.service.pidFile ?? ''}) on "${to.name}" is not running after the reboot: ${unit.state}\n${await unitLog(c, to.name, service.service.unit)}`,
        { hint },
      );
    if (!health.ok) {
      throw new UnderstudyError(
        'RUN_STANDBY_UNHEALTHY',
        `The patched service on "${to.name}" (${address}) fails its health check: ${health.detail}`,
        { hint },
      );
    }
    const { versionPath } = service.service;
    if (versionPath) {
      const version = await httpGet(c, to.name, `http://${address}:${c.options.port}${versionPath}`);
      c.facts.versionAfter = versionOf(version.body);
    }
    saveFacts(c);
    return { health: health.detail, unit: unit.state, version: c.facts.versionAfter, verified };
  },
});

/** The last lines of a unit's journal inside the LC (for the error of a unit that did not come up). */
async function unitLog(c: RunContext, lc: string, unit: string | undefined): Promise<string> {
  if (!unit) return '';
  const out = await c.host.driver
    .exec(lc, ['journalctl', '-u', unit, '-n', '12', '--no-pager', '-o', 'cat'], { okCodes: [0, 1] })
    .catch(() => undefined);
  return out?.stdout.trim() ?? '';
}

interface MoveServiceOptions {
  from: string;
  to: string;
  newAddress: string | undefined;
  since: string;
  fromRole: 'retired' | 'idle';
  /** The run's step doing this move; each finished phase of the switch is a progress note of it. */
  step: string;
}

/**
 * Moves the service from one LC to the other with the run's method, at most once (a switch the journal
 * finished after a crash is adopted), then records the NICs and roles as they now are.
 *
 * Past the point of no return the switch only rolls forward: when a cleanup step after it fails
 * (SWITCH_STEP_FAILED), the service already runs on `to`; the result says so, with the cleanup left
 * to the recovery of the next start, and nothing of the switch is undone.
 */
export async function moveService(c: RunContext, options: MoveServiceOptions): Promise<RunSwitchResult> {
  // Finished before a crash of the manager (and maybe recorded by the recovery): adopted as it is.
  const adopted = finishedSwitch(c.db, options.from, options.to, options.since);
  if (adopted) {
    await recordSwitch(c.db, c.host, { from: options.from, to: options.to, fromRole: options.fromRole });
    return adopted;
  }
  const service = runService(c.options);
  // The run's disk map goes from LC1 to the standby; a move back uses it the other way round.
  const diskMap = options.from === c.options.lc ? c.facts.diskMap : invertDiskMap(c.facts.diskMap);
  const input = planSwitch(c.db, {
    from: options.from,
    to: options.to,
    service: c.facts.serviceAddress ?? '',
    port: c.options.port,
    healthPath: c.options.healthPath,
    health: switchHealthOf(service),
    method: c.options.method,
    stateful: c.options.stateful,
    newAddress: options.newAddress,
  });
  // Write limits the catch-up put on the sender's disks; lifted once the switch is over, whatever its end.
  const limited: DiskSpec[] = [];
  const sender = getLc(c.db, options.from);
  const liftLimits = async (): Promise<void> => {
    for (const disk of limited.splice(0))
      await c.host.driver
        .setWriteLimit(sender.name, c.host.disks.device({ lc: sender, disk: disk.name }), null)
        .catch((error: unknown) =>
          c.logger.error(
            { err: error, lc: sender.name, disk: disk.name },
            'lifting a catch-up write limit failed',
          ),
        );
  };
  try {
    return await moveServiceCaughtUp(c, options, { service, diskMap, input, sender, limited });
  } finally {
    await liftLimits();
  }
}

async function moveServiceCaughtUp(
  c: RunContext,
  options: MoveServiceOptions,
  o: {
    service: ReturnType<typeof runService>;
    diskMap: DiskMap | undefined;
    input: ReturnType<typeof planSwitch>;
    sender: LcRecord;
    limited: DiskSpec[];
  },
): Promise<RunSwitchResult> {
  const { service, diskMap, input } = o;
  if (c.options.stateful) {
    // Catch-up syncs while LC1 still serves, so that the final sync inside the switch carries little;
    // a writer that keeps ahead of them is slowed until the switch is over.
    const caught = await catchUpDisks(c.host, o.sender, getLc(c.db, options.to), {
      logger: c.logger,
      diskMap,
      throttle: async (disk, bytesPerSecond) => {
        o.limited.push(disk);
        await c.host.driver.setWriteLimit(
          o.sender.name,
          c.host.disks.device({ lc: o.sender, disk: disk.name }),
          bytesPerSecond,
        );
      },
    });
    const throttled = caught.throttled.map(
      (t) => `${t.disk} to ${(t.bytesPerSecond / 1048576).toFixed(1)} MiB/s`,
    );
    c.emit({
      step: options.step,
      state: 'note',
      message: `catch-up sync: ${caught.files} paths in ${caught.disks.length} passes, ${Math.round(caught.durationMs)} ms${throttled.length ? `; writes limited on ${throttled.join(', ')} until the switch is over` : ''}${caught.outpaced.length ? `; the writer outpaces the sync on ${caught.outpaced.join(', ')}` : ''}`,
      progress: { catchUpThrottled: caught.throttled.length, catchUpOutpaced: caught.outpaced.length },
    });
  }
  let result: RunSwitchResult;
  let phaseStarted = performance.now();
  // Inside the hold of a stateful switch every write to disk delays the held requests: the notes of
  // its steps are written once it is released.
  const records = stepRecords();
  try {
    result = await switchOnce({
      since: options.since,
      input,
      deps: {
        db: c.db,
        logger: c.logger,
        ...bindSwitch(c.db, c.host, {
          from: options.from,
          to: options.to,
          stateful: c.options.stateful,
          service,
          diskMap,
        }),
        afterStep: (phase) => {
          const ms = Math.round(performance.now() - phaseStarted);
          phaseStarted = performance.now();
          records.add(phase, () =>
            c.emit({
              step: options.step,
              state: 'note',
              message: `${phase} done (${ms} ms)`,
              progress: { phase, durationMs: ms },
            }),
          );
          return c.crash(`switch/${phase}`, 'after');
        },
        // What the operator must know before the switch (slow writes, a wait for a quieter moment)
        // and where the hold went after it.
        onNote: (message, detail) =>
          c.emit({ step: options.step, state: 'note', message, progress: { ...detail } }),
        onHealth: (health) =>
          c.emit({
            step: options.step,
            state: 'note',
            message: `health ${health.phase} on ${health.lc}: ${health.ok ? 'ok' : 'failed'} (${health.detail})`,
            health,
          }),
      },
    });
  } catch (error) {
    records.flush();
    if (!isUnderstudyError(error, 'SWITCH_STEP_FAILED')) throw error;
    const switchId = typeof error.details.switchId === 'string' ? error.details.switchId : '';
    c.logger.error({ err: error, switchId }, 'the service moved; a cleanup step of the switch failed');
    c.emit({ step: options.step, state: 'note', message: `cleanup pending: ${error.message}` });
    result = {
      id: switchId,
      method: input.method,
      outcome: 'switched',
      durationMs: 0,
      drainMs: 0,
      leftOnLc1: 0,
      holdMs: 0,
      syncMs: 0,
      steps: [],
      cleanupPending: error.message,
    };
  }
  await recordSwitch(c.db, c.host, { from: options.from, to: options.to, fromRole: options.fromRole });
  // The standby serves: its data disks are compared whole with LC1's at the cut, in the background.
  if (c.options.stateful && result.outcome === 'switched')
    void startTreeCheck(c, { step: options.step, from: options.from, to: options.to, diskMap });
  return result;
}

/** The switch (Fig. 13–17, 21–26), with the final sync of the application disk when stateful. */
const switchTraffic = defineStep('switch', {
  name: 'switch',
  async run(c) {
    if (c.facts.switchResult) return c.facts.switchResult; // finished before a crash of the manager
    // LC1's address after the switch when it holds no other (every method: move-nic gives LC1 a NIC back).
    const newAddress = (c.facts.lc1NewAddress ??= freeAddress(c.db, c.host.network, c.options.lc));
    const since = (c.facts.switchStartedAt ??= new Date().toISOString());
    saveFacts(c);
    const result = await moveService(c, {
      step: 'switch',
      from: lc1(c).name,
      to: standby(c).name,
      newAddress,
      since,
      fromRole: 'retired',
    });
    c.facts.switchId = result.id;
    c.facts.switchResult = result;
    saveFacts(c);
    return result;
  },
});

/**
 * Record the applied dates and clear the next-run flags; drop the standby's old disks. Each patch is
 * recorded in one transaction with the fact that it was, so that a rerun after a crash records none
 * twice (its applied date stays the first one).
 */
const recordApplied = defineStep('record-applied', {
  name: 'record-applied',
  async run(c) {
    const to = standby(c);
    for (const r of c.facts.patchResults ?? []) {
      if (c.facts.recorded?.includes(r.name)) continue;
      const recorded = [...(c.facts.recorded ?? []), r.name];
      c.db.transaction(() => {
        c.catalogue.recordResult(r.name, c.options.lc, {
          state: 'ok',
          exitCode: r.exitCode,
          output: r.output,
        });
        c.catalogue.markNextRun(r.name, c.options.lc, false);
        c.journal.saveFacts(c.runId, { ...c.facts, recorded });
      })();
      c.facts.recorded = recorded;
    }
    await c.crash('record-applied', 'during');
    for (const disk of to.disks) await c.host.disks.dropAside({ lc: to, disk: disk.name }, c.runId);
    return { applied: (c.facts.patchResults ?? []).map((r) => r.name) };
  },
});

/** After the switch: the patched service watched for the run's watch time (see watch.ts). */
const watch = defineStep('watch', {
  name: 'watch',
  run: (c) => watchService(c),
});

/**
 * `step` failing while the standby's pool is full (the patch script cannot even write its table, the
 * standby cannot boot) fails with RUN_STANDBY_DISK_FULL naming the pool, not with the symptom.
 */
function namingFullStandbyDisk(step: Step): Step {
  return {
    ...step,
    run: (c) =>
      step.run(c).catch((error: unknown) => {
        if (isUnderstudyError(error, 'RUN_CANCELLED')) throw error;
        throw (
          standbyDiskFull(c, {
            lc: standby(c),
            disk: systemDiskOf(standby(c)),
            phase: 'patch',
            error,
            spaceOnly: true,
          }) ?? error
        );
      }),
  };
}

/** The forward steps journalled by name (the copy steps are made per disk). */
const fixedSteps: readonly Step[] = [
  findStandby,
  scan,
  stopStandby,
  writePatches,
  namingFullStandbyDisk(bootStandby),
  rebootStandby,
  checkStandby,
  switchTraffic,
  recordApplied,
  watch,
];

/** The forward steps of a run of `lc`: one copy step for each disk it declares, by role (system first). */
export function forwardStepsFor(lc: LcRecord): Step[] {
  return [
    ...fixedSteps.slice(0, 3),
    ...disksByRole(lc).map((d) => copyStep(diskRole(d))),
    ...fixedSteps.slice(3),
  ];
}

/** The forward step journalled as `name`; undefined for a name this version does not know. */
export function forwardStep(name: string): Step | undefined {
  if (name.startsWith('copy-')) return copyStep(name.slice('copy-'.length));
  return fixedSteps.find((s) => s.name === name);
}

export const switchStepName = switchTraffic.name;
