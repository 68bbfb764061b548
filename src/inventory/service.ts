/**
 * A service an LC runs, as the patch run, the switch and the health checks see it: how to find its main
 * process, where it listens, how to tell it is healthy, how it lets go of its connections (drain), how it
 * holds new connections while the application disk is synchronised (hold), and which paths are its data.
 *
 * Two kinds of process:
 * - `unit`: a systemd unit; its main PID is systemd's (`systemctl show -p MainPID --value <unit>`).
 * - `pidFile`: a process whose pid is in a file (images whose init is not systemd, such as busybox).
 *
 * In the LC's YAML (and as stored in the resource table):
 *
 *   services:
 *     - name: web
 *       unit: nginx.service
 *       ports: [80]
 *       health: { kind: http, path: /, status: 200 }     # or { kind: tcp } or { kind: command, argv: [...] }
 *       drain: { kind: reload }                          # stop | reload | signal | command | none
 *       hold: { kind: signal }                           # SIGSTOP/SIGCONT to the service's processes, or none
 *       data: [/srv/app]
 *       cut: none                                        # http: it speaks the switch's cut protocol
 */
import { z } from 'zod';
import { UnderstudyError } from '../core/index.ts';
import type { Db } from '../store/index.ts';

const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._/@+-]*$/, 'an absolute path of letters, digits and . _ / @ + -')
  .refine((p) => !p.split('/').includes('..'), 'a path without ".."');
const argv = z.array(z.string().min(1)).min(1, 'a command (argv list, at least the program)');
const port = z.number().int().min(1).max(65535);
const signalName = z
  .string()
  .regex(/^(SIG)?[A-Z][A-Z0-9+]*$/, 'a signal name such as QUIT, HUP or USR1')
  .transform((s) => s.replace(/^SIG/, ''));

const healthSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('http'),
      path: z.string().startsWith('/', 'an URL path starting with /'),
      status: z.number().int().min(100).max(599).default(200),
    })
    .strict(),
  z.object({ kind: z.literal('tcp') }).strict(),
  /** Run inside the LC; exit status 0 is healthy. */
  z.object({ kind: z.literal('command'), argv }).strict(),
]);

/**
 * What the service is asked to do:
 * - `stop`: `systemctl stop` (the unit's own graceful stop) / SIGTERM to the pid;
 * - `start`: `systemctl start` (only as the undoing of a stop);
 * - `reload`: `systemctl reload` / SIGHUP to the pid;
 * - `signal`: the signal to the main process;
 * - `command`: argv run inside the LC;
 * - `none`.
 */
const actionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('stop') }).strict(),
  z.object({ kind: z.literal('start') }).strict(),
  z.object({ kind: z.literal('reload') }).strict(),
  z.object({ kind: z.literal('signal'), signal: signalName }).strict(),
  z.object({ kind: z.literal('command'), argv }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
]);

/**
 * The stateful hold: `signal` stops every process of the service (SIGSTOP; new connections wait in the
 * kernel's accept backlog) and continues them (SIGCONT); `command` runs the two commands; `none` does
 * nothing (then a stateful switch can lose writes made between the final sync and the switch).
 */
const holdSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('signal') }).strict(),
  z.object({ kind: z.literal('command'), pause: argv, resume: argv }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
]);

export const serviceSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, '1–40 of a-z, 0-9, -, starting with a letter'),
    unit: z
      .string()
      .regex(/^[A-Za-z0-9:_.@-]+\.(service|socket)$/, 'a systemd unit name such as nginx.service')
      .optional(),
    pidFile: absolutePath.optional(),
    ports: z.array(port).min(1, 'at least one port'),
    health: healthSchema.default({ kind: 'tcp' }),
    drain: actionSchema.default({ kind: 'none' }),
    /** Undoes the drain (the switch reversed, or LC1 kept for a rollback); default: derived from drain. */
    undrain: actionSchema.optional(),
    hold: holdSchema.default({ kind: 'signal' }),
    data: z.array(absolutePath).default([]),
    /**
     * Whether the service speaks the switch's cut protocol (`http`: it reports and quiesces its writes
     * at `/.understudy/*` on its port, like the demo service) or not (`none`: the stateful switch cuts
     * when LC1 has no connection left, and holds LC2 with the hold above).
     */
    cut: z.enum(['http', 'none']).default('none'),
    /** An HTTP path answering JSON with a `version` field (recorded before and after a run). */
    versionPath: z.string().startsWith('/').optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.unit === undefined) === (s.pidFile === undefined))
      ctx.addIssue({ code: 'custom', message: 'give exactly one of unit (systemd) or pidFile', path: [] });
  });

export type ServiceDefinition = z.output<typeof serviceSchema>;
export type ServiceInput = z.input<typeof serviceSchema>;
export type ServiceAction = z.output<typeof actionSchema>;
export type ServiceHealth = z.output<typeof healthSchema>;

/** The undoing of a drain: the definition's own, or start after stop, nothing otherwise. */
export function undrainOf(service: ServiceDefinition): ServiceAction {
  if (service.undrain) return service.undrain;
  return service.drain.kind === 'stop' ? { kind: 'start' } : { kind: 'none' };
}

/**
 * Checks a list of service definitions (from YAML, flags or the API); `where` names them in errors
 * (e.g. `lcs[0].services`). Throws SERVICE_INVALID naming the field and what would be accepted.
 */
export function validateServices(input: unknown, where = 'services'): ServiceDefinition[] {
  const result = z.array(serviceSchema).safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const at = [where, ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
        .join('')
        .replace(/\.\[/g, '[');
      return `${at}: ${i.message}`;
    });
    throw new UnderstudyError('SERVICE_INVALID', `Invalid service definition:\n  ${lines.join('\n  ')}`, {
      hint: 'See docs/lxc.md (services): unit or pidFile, ports, health, drain, hold, data.',
    });
  }
  const names = new Set<string>();
  for (const s of result.data) {
    if (names.has(s.name))
      throw new UnderstudyError('SERVICE_INVALID', `${where}: the service name "${s.name}" is repeated`);
    names.add(s.name);
  }
  return result.data;
}

/** The flags of `lc create` / `lc service set` for one service. */
export interface ServiceFlags {
  name?: string;
  unit?: string;
  pidFile?: string;
  port?: string[];
  /** `http:/path[:status]`, `tcp`, or `command:<argv…>` (split on spaces). */
  health?: string;
  /** `stop`, `reload`, `none`, `signal:QUIT`, `command:<argv…>`. */
  drain?: string;
  undrain?: string;
  /** `signal`, `none`, or `command:<pause argv>;<resume argv>`. */
  hold?: string;
  data?: string[];
  versionPath?: string;
  /** `http` or `none` (the switch's cut protocol). */
  cut?: string;
}

const words = (text: string): string[] => text.split(/\s+/).filter(Boolean);

function parseAction(text: string): unknown {
  const [kind = '', ...rest] = text.split(':');
  const arg = rest.join(':');
  if (kind === 'signal') return { kind, signal: arg };
  if (kind === 'command') return { kind, argv: words(arg) };
  return { kind };
}

function parseHealth(text: string): unknown {
  const [kind = '', ...rest] = text.split(':');
  if (kind === 'http') {
    const [p = '/', status] = rest;
    return { kind, path: p, ...(status === undefined ? {} : { status: Number(status) }) };
  }
  if (kind === 'command') return { kind, argv: words(rest.join(':')) };
  return { kind };
}

function parseHold(text: string): unknown {
  const [kind = '', ...rest] = text.split(':');
  if (kind === 'command') {
    const [pause = '', resume = ''] = rest.join(':').split(';');
    return { kind, pause: words(pause), resume: words(resume) };
  }
  return { kind };
}

/** One definition from flags (undefined when no service flag was given). */
export function serviceFromFlags(f: ServiceFlags): ServiceDefinition | undefined {
  if (f.unit === undefined && f.pidFile === undefined) return undefined;
  const input = {
    name: f.name ?? (f.unit ? f.unit.replace(/\.(service|socket)$/, '').replace(/[^a-z0-9-]/g, '-') : 'app'),
    ...(f.unit === undefined ? {} : { unit: f.unit }),
    ...(f.pidFile === undefined ? {} : { pidFile: f.pidFile }),
    ports: (f.port ?? ['80']).map(Number),
    ...(f.health === undefined ? {} : { health: parseHealth(f.health) }),
    ...(f.drain === undefined ? {} : { drain: parseAction(f.drain) }),
    ...(f.undrain === undefined ? {} : { undrain: parseAction(f.undrain) }),
    ...(f.hold === undefined ? {} : { hold: parseHold(f.hold) }),
    ...(f.data === undefined ? {} : { data: f.data }),
    ...(f.versionPath === undefined ? {} : { versionPath: f.versionPath }),
    ...(f.cut === undefined ? {} : { cut: f.cut }),
  };
  return validateServices([input], 'service flags')[0];
}

/** The services an LC declared, in their order. */
export function servicesOf(db: Db, lc: string): ServiceDefinition[] {
  const rows = db.prepare('SELECT definition FROM lc_services WHERE lc = ? ORDER BY position').all(lc) as {
    definition: string;
  }[];
  return validateServices(
    rows.map((r) => JSON.parse(r.definition) as unknown),
    `services of ${lc}`,
  );
}

/** Replaces the services an LC declares. */
export function setServices(db: Db, lc: string, services: readonly ServiceDefinition[]): void {
  db.transaction(() => {
    db.prepare('DELETE FROM lc_services WHERE lc = ?').run(lc);
    services.forEach((s, i) =>
      db
        .prepare('INSERT INTO lc_services (lc, name, definition, position) VALUES (?, ?, ?, ?)')
        .run(lc, s.name, JSON.stringify(s), i),
    );
  })();
}
