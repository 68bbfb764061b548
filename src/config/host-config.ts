/**
 * The YAML file that describes a host and its LCs (`understudy apply <file>`), validated once into a
 * complete configuration. Errors name the field by its path in the file, e.g. `lcs[1].memory`.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { UnderstudyError, isErrno, parseConfigYaml } from '../core/index.ts';
import { defaultDriver } from '../drivers/index.ts';
import { serviceSchema } from '../inventory/index.ts';

const lcSchema = z
  .object({
    name: z.string(),
    image: z.string().default('busybox'),
    cpus: z.union([z.string(), z.number().int().nonnegative()]).transform(String).default('0'),
    cpuShare: z.number().int().min(1).max(6400).default(100),
    memory: z.number().int().min(16).describe('MB').default(128),
    disks: z
      .object({ system: z.number().int().min(1).default(1024), app: z.number().int().min(0).default(512) })
      .strict()
      .default({ system: 1024, app: 512 }),
    appMount: z.string().default('/srv'),
    pool: z.string().default('main'),
    addresses: z.array(z.string()).default([]),
    mac: z.string().optional(),
    role: z.enum(['active', 'standby', 'idle', 'retired']).default('idle'),
    /**
     * Partitioning driver: lxc (the default) | namespace (retired for operators, the project's tests
     * only: not isolated like LXC); an unknown or retired name is refused when the LC is created.
     */
    driver: z.string().default(defaultDriver),
    start: z.boolean().default(false),
    /** The services it runs (see src/inventory/service.ts). */
    services: z.array(serviceSchema).default([]),
  })
  .strict();

export const hostConfigSchema = z
  .object({
    host: z
      .object({
        subnet: z.string().default('198.18.0.0/24'),
        bridge: z.string().optional(),
        device: z.string().optional(),
        poolSize: z.string().default('8G'),
        pools: z
          .array(
            z
              .object({ name: z.string(), device: z.string().optional(), size: z.string().default('8G') })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .default({ subnet: '198.18.0.0/24', poolSize: '8G', pools: [] }),
    images: z.array(z.enum(['busybox', 'debian'])).default([]),
    lcs: z.array(lcSchema).default([]),
  })
  .strict();

export type HostConfig = z.infer<typeof hostConfigSchema>;
export type LcConfig = z.infer<typeof lcSchema>;

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );
}

export function parseHostConfig(text: string, file: string): HostConfig {
  const raw = parseConfigYaml(text, file);
  const result = hostConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${fieldPath(i.path) || '(top level)'}: ${i.message}`);
    throw new UnderstudyError('CONFIG_INVALID', `${file} is invalid:\n  ${issues.join('\n  ')}`, {
      details: { issues },
    });
  }
  return result.data;
}

export function loadHostConfig(file: string): HostConfig {
  try {
    return parseHostConfig(fs.readFileSync(file, 'utf8'), file);
  } catch (error) {
    if (isErrno(error, 'ENOENT'))
      throw new UnderstudyError('CONFIG_NOT_FOUND', `The configuration file ${file} does not exist`);
    throw error;
  }
}
