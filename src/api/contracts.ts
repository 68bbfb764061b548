/**
 * Every request schema of the API in one place (zod). Routes validate with them and the OpenAPI
 * document (`/v1/openapi.json`) is generated from them, so the two cannot drift apart.
 */
import { z } from 'zod';
import { patchCategories, patchFormats, type PatchCategory, type PatchFormat } from '../catalogue/index.ts';
import { lcRoles, type LcRole } from '../inventory/index.ts';
import { describeDrivers } from '../drivers/index.ts';
import { driverNames } from '../app/index.ts';
import { switchMethods, type SwitchMethod } from '../switch/index.ts';

const name = z.string().min(1).max(64);

export const nameParams = z.object({ name });
export const idParams = z.object({ id: z.string().min(1).max(64) });

export const lcCreateBody = z
  .object({
    name: z.string().min(1).max(20).describe('a-z, 0-9, -, starting with a letter'),
    image: name,
    cpus: z.string().default('0').describe('CPU set, e.g. 0 or 0-1'),
    cpuSharePercent: z.number().int().min(1).max(100_00).default(100),
    memoryMb: z.number().int().min(16).default(128),
    systemDiskMb: z.number().int().min(64).default(1024),
    appDiskMb: z.number().int().min(0).default(512),
    appMountPath: z.string().startsWith('/').default('/srv'),
    pool: name.default('main'),
    addresses: z.array(z.string()).default([]).describe('CIDR addresses of eth0; [] = no NIC'),
    mac: z.string().optional(),
    role: z.enum(lcRoles as [LcRole, ...LcRole[]]).default('idle'),
    driver: z
      .string()
      .min(1)
      .max(32)
      .optional()
      .describe(`partitioning driver: ${describeDrivers(driverNames())}`),
    services: z
      .array(z.record(z.string(), z.unknown()))
      .max(16)
      .optional()
      .describe('the services it runs, as in the LC’s YAML (see PUT /v1/lcs/{name}/services)'),
    start: z.boolean().default(false).describe('boot it once created'),
  })
  .strict();

/** An image build, as `understudy image build <recipe>` takes it. */
export const imageBuildBody = z
  .object({
    recipe: z.string().min(1).max(32).describe('busybox | debian'),
    name: z.string().min(1).max(64).optional().describe('default: the recipe name'),
    rebuild: z.boolean().default(false),
    suite: z.string().min(1).max(32).optional().describe('debian: a real Debian system of this suite'),
    packages: z.array(z.string().min(1).max(100)).max(100).optional().describe('debian: packages to install'),
  })
  .strict();

export const lcStartBody = z
  .object({ wait: z.boolean().default(true), timeoutMs: z.number().int().positive().default(30_000) })
  .strict()
  .default({ wait: true, timeoutMs: 30_000 });

export const lcStopBody = z
  .object({ timeoutMs: z.number().int().positive().default(15_000) })
  .strict()
  .default({ timeoutMs: 15_000 });

export const lcDestroyQuery = z.object({ force: z.enum(['true', 'false']).optional() }).strict();

export const serviceQuery = z
  .object({
    port: z.coerce
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("an HTTP GET at this port instead of the declared check (default: the service's first port)"),
    path: z
      .string()
      .startsWith('/')
      .max(200)
      .optional()
      .describe('an HTTP GET of this path instead of the declared check (default: /)'),
  })
  .strict();

export const patchListQuery = z.object({ lc: name.optional() }).strict();

export const patchAddBody = z
  .object({
    name,
    categories: z.array(z.enum(patchCategories as [PatchCategory, ...PatchCategory[]])).min(1),
    format: z.enum(patchFormats as [PatchFormat, ...PatchFormat[]]),
    contentBase64: z.string().min(1).describe('the patch file, base64'),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional()
      .describe('expected sha256 of the file; checked before it is registered'),
    description: z.string().max(2000).optional(),
  })
  .strict();

export const nextRunBody = z.object({ lc: name, nextRun: z.boolean() }).strict();

export const runStartBody = z
  .object({
    lc: name,
    patches: z.array(name).optional().describe('default: the patches marked for the next run'),
    standby: name.optional(),
    method: z.enum(switchMethods as unknown as [SwitchMethod, ...SwitchMethod[]]).default('instant'),
    scanDatabase: z.string().optional(),
    skipScan: z.boolean().default(false),
    bootTimeoutMs: z.number().int().positive().default(120_000),
    stateful: z.boolean().default(true),
    watchMs: z.number().int().min(0).default(0),
  })
  .strict();

/** A switch on its own, as `understudy switch <from> <to>` takes it (same defaults, same checks). */
export const switchStartBody = z
  .object({
    from: name.describe('the LC that serves now'),
    to: name.describe('the LC that takes the service over'),
    method: z.string().min(1).max(32).describe('move-nic | swap-address | instant'),
    stateful: z.boolean().default(false).describe('final sync of the application disk before <to> serves'),
    fromAddress: z.string().optional().describe('CIDR address <from> takes after the switch'),
    drainTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('longest wait for accepted requests to finish'),
  })
  .strict();

export const runListQuery = z.object({ lc: name.optional() }).strict();

export const pollBody = z.object({ feed: name.optional() }).strict().default({});

export const approvalBody = z
  .object({
    admin: name,
    challenge: z.string().min(8).max(128),
    decision: z.string().min(1).max(2000).describe('approve-all | approve: p1, p2 | reject'),
    code: z.string().min(1).max(32).describe('the approval code the administrator derived'),
  })
  .strict();

export const eventsQuery = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe('resume after this event id (or Last-Event-ID)'),
    run: z.string().optional().describe('only this run’s events'),
  })
  .strict();

export const auditQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict();

/** The error body every failure answers with. */
export const errorBody = z.object({
  statusCode: z.number().int(),
  code: z.string().describe('a code of docs/errors.md'),
  error: z.string(),
  message: z.string(),
  hint: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/**
 * The services an LC declares, as in its YAML (`services:`): each `{name, unit | pidFile, ports,
 * health, drain, undrain, hold, data, cut, versionPath}`. The definitions themselves are checked by
 * the inventory (SERVICE_INVALID naming the field, as the CLI's flags and the YAML are).
 */
export const servicesBody = z
  .object({
    services: z
      .array(z.record(z.string(), z.unknown()))
      .max(16)
      .describe('service definitions (docs/lxc.md, services); [] declares none'),
  })
  .strict();

const feedNames = z
  .string()
  .max(1000)
  .transform((s) =>
    s
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean),
  )
  .pipe(z.array(name).max(20));

const packageNames = z
  .string()
  .max(4000)
  .transform((s) =>
    s
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().min(1).max(100)).max(200));

export const updatesQuery = z
  .object({
    feed: feedNames.optional().describe('apt feeds to use, comma-separated (default: every apt feed)'),
    package: packageNames
      .optional()
      .describe('only the updates of these installed packages and what must move with them, comma-separated'),
  })
  .strict();

export const updatesApplyBody = z
  .object({
    feeds: z.array(name).max(20).default([]).describe('apt feeds to use (default: every apt feed)'),
    packages: z
      .array(z.string().min(1).max(100))
      .max(200)
      .default([])
      .describe('only the updates of these installed packages and what must move with them'),
  })
  .strict()
  .default({ feeds: [], packages: [] });

export const roleBody = z.object({ role: z.enum(lcRoles as [LcRole, ...LcRole[]]) }).strict();

export const tokenCreateBody = z
  .object({
    operator: z.string().min(1).max(64).describe('letters, digits, dot, @, dash or underscore'),
    scope: z.enum(['read', 'admin']).default('read'),
  })
  .strict();

export const copyHistoryQuery = z
  .object({
    limit: z.coerce.number().int().min(0).max(1000).default(50).describe('write records (0 = summary only)'),
  })
  .strict();

/** `host pool-add`: another storage pool, on a device or a sparse loop image of sizeBytes. */
export const poolAddBody = z
  .object({
    name: z.string().min(1).max(20).describe('a-z, 0-9, -, starting with a letter'),
    device: z.string().startsWith('/').optional().describe('block device (default: a sparse loop image)'),
    sizeBytes: z
      .number()
      .int()
      .positive()
      .default(8 * 1024 ** 3)
      .describe('size of the loop image'),
  })
  .strict();

/** `image import`: an image of a directory or tar archive on the daemon's host. */
export const imageImportBody = z
  .object({
    source: z.string().startsWith('/').describe('absolute path on the host: a root filesystem or a tar'),
    name,
    rebuild: z.boolean().default(false),
  })
  .strict();

/** `lc import`: an existing (stopped) LXC container on the daemon's host. */
export const lcImportBody = z
  .object({
    container: name,
    lxcPath: z.string().startsWith('/').default('/var/lib/lxc'),
    name: z.string().min(1).max(20).optional().describe('name of the LC (default: the container name)'),
    pool: name.default('main'),
  })
  .strict();

/** `lc exec`: a command inside the LC; the answer carries its exit code and output. */
export const lcExecBody = z
  .object({
    argv: z.array(z.string().max(4096)).min(1).max(256),
    timeoutMs: z
      .number()
      .int()
      .positive()
      .max(24 * 3600_000)
      .default(600_000),
  })
  .strict();

/** `lc nic add`: a NIC on the bridge. */
export const nicAddBody = z
  .object({
    addresses: z.array(z.string()).max(16).default([]).describe('CIDR addresses; [] = none'),
    mac: z.string().optional(),
    name: z.string().min(1).max(15).optional().describe('name inside the LC (default: the lowest free ethN)'),
  })
  .strict();

export const nicParams = z.object({ name, nic: z.string().min(1).max(15) });

/** `apply <file>`: the YAML text of a host description (the host must be initialised). */
export const applyBody = z
  .object({
    yaml: z
      .string()
      .min(1)
      .max(256 * 1024),
    file: z.string().max(1000).optional().describe('the file it came from, for messages'),
  })
  .strict();

/** `disk copy`: a live copy of an LC's disk onto a stopped LC's disk. */
export const diskCopyBody = z
  .object({
    from: name.describe('the LC whose disk is copied (it may run)'),
    disk: name,
    to: name.describe('the LC whose disk receives the copy (stopped)'),
    toDisk: name.optional().describe('default: the same name'),
    mode: z.enum(['auto', 'send-receive', 'snapshot']).default('auto'),
    policy: z
      .object({
        maxPasses: z.number().int().min(0).optional(),
        cutBelowBytes: z.number().int().min(0).optional(),
        onNoConvergence: z.enum(['throttle', 'long-freeze', 'fail']).optional(),
      })
      .strict()
      .default({}),
    verify: z.boolean().default(false),
  })
  .strict();

/** `feed add`: a patch source, with options as the CLI resolves them from its flags. */
export const feedAddBody = z
  .object({
    name,
    kind: z.enum(['patch-server', 'apt']),
    url: z.string().min(1).max(2000),
    intervalSeconds: z.number().positive().default(3600),
    options: z
      .record(z.string(), z.unknown())
      .describe('patch-server: {publicKey}; apt: {suite, components, architectures, keyring, fingerprints}'),
  })
  .strict();
