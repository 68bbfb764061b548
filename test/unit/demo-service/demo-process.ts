/** Starts the demo service (assets/demo-service/server.mjs) as a child process on 127.0.0.1 for tests. */
import { fileURLToPath } from 'node:url';
import { spawnProcess, type ExecResult, type SpawnedProcess } from '../../../src/core/index.ts';

export const demoServerPath = fileURLToPath(
  new URL('../../../assets/demo-service/server.mjs', import.meta.url),
);

export interface DemoProcess {
  port: number;
  pid: number;
  spawned: SpawnedProcess;
  /** Everything the service printed on stdout so far. */
  output(): string;
  exited: Promise<ExecResult>;
  /** SIGKILLs it if it still runs and waits for the exit. Safe to call twice. */
  kill(): Promise<void>;
}

/** Starts the service listening on a free port (DEMO_LISTEN=127.0.0.1:0) and waits for its start line. */
export async function startDemo(options: {
  dataDir: string;
  pidFile?: string;
  env?: Record<string, string>;
}): Promise<DemoProcess> {
  const spawned = spawnProcess([process.execPath, demoServerPath], {
    env: {
      DEMO_LISTEN: '127.0.0.1:0',
      DEMO_DATA_DIR: options.dataDir,
      ...(options.pidFile ? { DEMO_PID_FILE: options.pidFile } : {}),
      ...options.env,
    },
  });
  let stdout = '';
  let exitedFlag = false;
  const exited = spawned.done.then((result) => {
    exitedFlag = true;
    return result;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`demo service did not start in 10 s; output: ${stdout}`)),
      10_000,
    );
    spawned.child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const match = / started on [^ ]+:(\d+) /.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void exited.then((result) => {
      clearTimeout(timer);
      reject(
        new Error(
          `demo service exited during start (${String(result.exitCode)}): ${stdout} ${result.stderr}`,
        ),
      );
    });
  });
  const pid = spawned.child.pid;
  if (pid === undefined) throw new Error('demo service has no pid');
  return {
    port,
    pid,
    spawned,
    output: () => stdout,
    exited,
    kill: async () => {
      if (!exitedFlag) spawned.child.kill('SIGKILL');
      await exited;
    },
  };
}
