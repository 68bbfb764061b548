/**
 * The stateful example service beside nginx in the lxc demo: the project's own key-value demo service
 * (assets/demo-service/server.mjs, Node.js copied from the host) as a systemd unit in the LC, listening
 * on loopback only, with its data on the application disk. nginx fronts it: `/kv/…` (PUT answered only
 * once fsynced), `/health` (the data disk writable, the logs healthy) and, to loopback only, the
 * switch's cut protocol at `/.understudy/…`, so that a stateful switch cuts by writes (no write starts
 * on LC1 after the final sync's snapshot; requests for data that reach LC1 meanwhile are passed to LC2,
 * held there until its data is in) instead of waiting for LC1 to have no connection left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnderstudyError, sleep } from '../core/index.ts';
import { assetsDir } from '../images/index.ts';
import type { HostContext } from '../app/index.ts';
import type { LcSpec } from '../drivers/index.ts';
import type { ServiceInput } from '../inventory/index.ts';

const unitName = 'understudy-kv.service';
const listen = '127.0.0.1:8080';
/** Where its logs live: on the application disk (mounted at /srv/app in the demo's LCs). */
export const kvDataDir = '/srv/app/kv';

const unit = `[Unit]
Description=understudy key-value demo service (data on the application disk)
After=local-fs.target network.target

[Service]
Environment=DEMO_LISTEN=${listen} DEMO_DATA_DIR=${kvDataDir}
ExecStart=/usr/local/bin/node /opt/understudy-kv/server.mjs
Restart=on-failure

[Install]
WantedBy=multi-user.target
`;

const proxied = `proxy_pass http://${listen};
\t\t# nginx names the LC itself (X-Served-By below); the store's version is not the site's.
\t\tproxy_hide_header X-Served-By;
\t\tproxy_hide_header X-Version;`;

/** The locations added to nginx's default site (inside its server block). */
const locations = `
\tlocation ^~ /kv/ {
\t\t${proxied}
\t}
\tlocation = /health {
\t\t${proxied}
\t}
\t# The switch's cut protocol, from inside the LC only.
\tlocation ^~ /.understudy/ {
\t\tallow 127.0.0.1;
\t\tdeny all;
\t\t${proxied}
\t\tproxy_read_timeout 300s;
\t}
`;

/**
 * nginx with the store behind it, as the demo's LC declares it: a systemd unit; its health is the
 * store's through nginx; drained by a graceful reload; it speaks the cut protocol (through nginx, to
 * the store); its data is the application disk.
 */
export const nginxKvService: ServiceInput = {
  name: 'web',
  unit: 'nginx.service',
  ports: [80],
  health: { kind: 'http', path: '/health', status: 200 },
  drain: { kind: 'reload' },
  hold: { kind: 'signal' },
  data: ['/srv/app'],
  cut: 'http',
};

/** Adds the store's locations to nginx's default site text (after its `server_name _;`). */
export function withKvLocations(site: string): string {
  if (!site.includes('server_name _;'))
    throw new UnderstudyError(
      'INTERNAL',
      "nginx's default site has no `server_name _;` to add the store after",
    );
  return site.replace('server_name _;', `server_name _;\n${locations}`);
}

/** Writes Node.js, the store and its unit into `lc`'s system disk (before its first boot). */
export async function installKvService(host: HostContext, lc: LcSpec): Promise<void> {
  await host.driver.writeFile(
    lc,
    '/usr/local/bin/node',
    fs.readFileSync(fs.realpathSync(process.execPath)),
    0o755,
  );
  await host.driver.writeFile(
    lc,
    '/opt/understudy-kv/server.mjs',
    fs.readFileSync(path.join(assetsDir, 'demo-service/server.mjs')),
    0o644,
  );
  await host.driver.writeFile(lc, `/etc/systemd/system/${unitName}`, unit, 0o644);
}

/**
 * Enables and starts the store in the running `lc` (enabled on its disk, so a copy boots it too) and
 * waits until nginx answers `/health` from it at `url`; throws DEMO_SERVICE_DOWN with the unit's
 * journal when it does not within `timeoutMs`.
 */
export async function startKvService(
  host: HostContext,
  o: { lc: string; healthUrl: string; timeoutMs: number },
): Promise<void> {
  await host.driver.exec(o.lc, ['systemctl', 'enable', '--now', unitName], { timeoutMs: 60_000 });
  const deadline = Date.now() + o.timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(o.healthUrl, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(250);
  }
  const journal = await host.driver.exec(o.lc, ['journalctl', '-u', unitName, '-n', '20', '--no-pager'], {
    okCodes: [0, 1],
  });
  throw new UnderstudyError(
    'DEMO_SERVICE_DOWN',
    `The key-value store in ${o.lc} did not answer ${o.healthUrl} within ${o.timeoutMs} ms (${last}):\n${journal.stdout.trim()}`,
    { hint: "Its Node.js is the host's, copied in: it needs the host's glibc and libstdc++ in the image." },
  );
}
