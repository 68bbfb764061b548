/**
 * Benchmark of the patch monitor on this machine.
 *   node --expose-gc --import tsx bench/monitor-poll.ts [--quick]
 * 1. Poll of a signed index of 10,000 patches of which 10 are new (real HTTP server on 127.0.0.1):
 *    wall time of the poll and memory (peak RSS of the process, heap growth during the poll).
 * 2. With a 1 s poll interval: delay from a patch appearing on the server to the notification
 *    being in the administrator's IMAP mailbox (daemon + smtp-server + dovecot, all real).
 * Figures go into docs/monitor.md with the command.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { silentLogger, waitFor } from '../src/core/index.ts';
import { runDaemon } from '../src/api/index.ts';
import { openApp, type App } from '../src/app/index.ts';
import {
  addFeed,
  createMonitor,
  realFetcher,
  resolveMonitorConfig,
  signPatchIndex,
} from '../src/monitor/index.ts';
import { openMonitorStore } from '../test/helpers/stores.ts';
import { PatchServerDir, startHttpServer, tempDir } from '../test/e2e/monitor/fixtures.ts';
import { startMailWorld } from '../test/e2e/mail/mail-servers.ts';

const quick = process.argv.includes('--quick');
const pollRuns = quick ? 1 : 5;
const delayRuns = quick ? 3 : 10;
const MiB = 1024 * 1024;
const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

async function benchPoll(): Promise<void> {
  const times: number[] = [];
  const heapGrowth: number[] = [];
  let indexBytes = 0;
  for (let run = 0; run < pollRuns; run++) {
    const served = tempDir('us-bench');
    const stateDir = tempDir('us-bench-state');
    const http = await startHttpServer(served);
    try {
      const dir = new PatchServerDir(served);
      const old = new Date(Date.now() - 30 * 86_400_000);
      const entries = [];
      for (let i = 0; i < 10_000; i++) {
        const fresh = i >= 9_990;
        const name = `patch-${String(i).padStart(5, '0')}`;
        const content = `patch ${i} ${randomBytes(8).toString('hex')}\n`;
        const published = fresh
          ? new Date(Date.now() - (10_000 - i) * 1000)
          : new Date(old.getTime() + i * 60_000);
        if (fresh) fs.writeFileSync(path.join(served, 'files', name), content);
        entries.push({
          name,
          categories: i % 3 === 0 ? ['security'] : ['bugfix'],
          published: published.toISOString(),
          description: `Fixes issue ${i} in component ${i % 97}`,
          sha256: createHash('sha256').update(content).digest('hex'),
          size: Buffer.byteLength(content),
          format: 'diff',
          file: `files/${name}`,
        });
      }
      const index = Buffer.from(
        JSON.stringify({ version: 1, generated: new Date().toISOString(), patches: entries }),
      );
      indexBytes = index.length;
      fs.writeFileSync(path.join(served, 'index.json'), index);
      fs.writeFileSync(path.join(served, 'index.json.sig'), signPatchIndex(index, dir.privateKey));
      const { db, catalogue } = openMonitorStore(stateDir);
      addFeed(db, {
        name: 'big',
        kind: 'patch-server',
        url: http.url,
        intervalSeconds: 3600,
        options: { publicKey: dir.publicKeyBase64 },
      });
      // The last check saw everything up to the 9,990th patch.
      db.prepare('UPDATE feed_state SET watermark = ? WHERE feed = ?').run(
        new Date(old.getTime() + 9_989 * 60_000).toISOString(),
        'big',
      );
      const monitor = createMonitor({
        db,
        catalogue,
        config: resolveMonitorConfig({}, stateDir),
        stateDir,
        fetcher: realFetcher,
        managedLcs: { list: async () => [], installedPackages: async () => new Map() },
        logger: silentLogger,
      });
      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      let heapPeak = heapBefore;
      const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 5);
      const started = performance.now();
      const [result] = await monitor.pollNow('big');
      times.push(performance.now() - started);
      clearInterval(sampler);
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      heapGrowth.push(heapPeak - heapBefore);
      if (result?.registered !== 10)
        throw new Error(
          `expected 10 new patches, got ${result?.registered}: ${JSON.stringify(result?.error)}`,
        );
      await monitor.stop();
      db.close();
    } finally {
      await http.close();
      fs.rmSync(served, { recursive: true, force: true });
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  }
  console.log(
    `\nPoll of a signed index of 10,000 patches (${(indexBytes / MiB).toFixed(2)} MiB), 10 new, ${pollRuns} run(s):`,
  );
  console.log(
    `  time:        median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)})`,
  );
  console.log(
    `  heap growth: median ${(median(heapGrowth) / MiB).toFixed(1)} MiB during the poll (sampled every 5 ms)`,
  );
  console.log(`  peak RSS of the whole process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

async function benchDelay(): Promise<void> {
  const world = await startMailWorld(['understudy', 'admin']);
  const served = tempDir('us-bench-delay');
  const stateDir = tempDir('us-bench-delay-state');
  const http = await startHttpServer(served);
  let daemon: Awaited<ReturnType<typeof runDaemon>> | undefined;
  let app: App | undefined;
  try {
    const dir = new PatchServerDir(served);
    dir.publish();
    const configPath = path.join(stateDir, 'monitor.yaml');
    fs.writeFileSync(
      configPath,
      stringify({
        api: { port: 0 },
        mail: { from: `understudy@${world.domain}`, smtp: { host: '127.0.0.1', port: world.smtpPort } },
        administrators: [
          { name: 'admin', email: `admin@${world.domain}`, secret: randomBytes(32).toString('hex') },
        ],
        monitor: { tickMs: 100 },
      }),
    );
    {
      const { db } = openMonitorStore(stateDir);
      addFeed(db, {
        name: 'vendor',
        kind: 'patch-server',
        url: http.url,
        intervalSeconds: 1,
        options: { publicKey: dir.publicKeyBase64 },
      });
      db.close();
    }
    app = openApp(stateDir);
    daemon = await runDaemon({ manager: app, stateDir, configPath, logger: silentLogger, port: 0 });
    const delays: number[] = [];
    for (let i = 0; i < delayRuns; i++) {
      const before = (await world.inbox('admin')).length;
      const appeared = Date.now();
      dir.add({ name: `delay-${i}`, content: `patch ${i}\n` });
      const got = await waitFor(
        async () => ((await world.inbox('admin')).length > before ? true : undefined),
        { timeoutMs: 15_000, intervalMs: 20 },
      );
      if (!got) throw new Error('no mail within 15 s');
      delays.push(Date.now() - appeared);
      await new Promise((r) => setTimeout(r, Math.random() * 1000)); // spread the arrivals over the poll cycle
    }
    console.log(
      `\nPatch on server → notification in the administrator's IMAP mailbox, poll interval 1 s, ${delayRuns} patches:`,
    );
    console.log(
      `  median ${median(delays).toFixed(0)} ms, min ${Math.min(...delays)} ms, max ${Math.max(...delays)} ms`,
    );
  } finally {
    await daemon?.close();
    app?.close();
    await http.close();
    await world.close();
    fs.rmSync(served, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

await benchPoll();
await benchDelay();
