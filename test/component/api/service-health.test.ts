/**
 * `GET /v1/lcs/{name}/service` and the console's LC table check the service the LC declares (its port
 * and its health check: HTTP path and status, or a command inside), never a fixed port 80 and
 * `/health`. Driven in-process (fastify inject) over the in-memory host, whose LCs answer 200 at
 * `/health` and `/version` and 404 elsewhere.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/core/index.ts';
import { buildApi, createApiToken, createOperations } from '../../../src/api/index.ts';
import { EventLog } from '../../../src/events/index.ts';
import { setServices, validateServices, type ServiceInput } from '../../../src/inventory/index.ts';
import { createMonitor, realFetcher, resolveMonitorConfig } from '../../../src/monitor/index.ts';
import { createMemoryRun } from '../../helpers/memory-run.ts';

async function setup(t: { after: (fn: () => unknown) => void }) {
  const f = await createMemoryRun();
  const config = resolveMonitorConfig(
    { administrators: [{ name: 'alice', email: 'a@x.test', secret: randomBytes(32).toString('hex') }] },
    f.dir,
  );
  const monitor = createMonitor({
    db: f.db,
    catalogue: f.catalogue,
    config,
    stateDir: f.dir,
    fetcher: realFetcher,
    managedLcs: { list: async () => [], installedPackages: async () => new Map() },
    logger: silentLogger,
  });
  const events = new EventLog(f.db);
  const operations = createOperations({
    manager: { stateDir: f.dir, db: f.db },
    host: f.mem.host,
    catalogue: f.catalogue,
    events,
    logger: silentLogger,
  });
  const app = buildApi({
    db: f.db,
    catalogue: f.catalogue,
    monitor,
    config,
    logger: silentLogger,
    events,
    operations,
  });
  t.after(async () => {
    await app.close();
    f.close();
  });
  const token = createApiToken(f.db, { operator: 'rick', scope: 'read' }).token;
  /** Declares lc1's one service (undefined: none). */
  const declare = (service: Partial<ServiceInput> | undefined) =>
    setServices(
      f.db,
      'lc1',
      service ? validateServices([{ name: 'web', unit: 'web.service', ...service }], 'services') : [],
    );
  const health = async (query = '') => {
    const res = await app.inject({
      url: `/v1/lcs/lc1/service${query}`,
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as {
      service: string | null;
      check: string | null;
      url: string | null;
      state: string;
      status: number | null;
      error: string | null;
    };
  };
  const consoleHealth = async (): Promise<string> => {
    const login = await app.inject({ method: 'POST', url: '/login', payload: { token, next: '/' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
    const part = await app.inject({ url: '/ui/part/lcs', headers: { cookie } });
    assert.equal(part.statusCode, 200);
    const row = /<tr id="lc-lc1">([\s\S]*?)<\/tr>/.exec(part.body)?.[1] ?? '';
    // The fourth cell is the service's health.
    return [...row.matchAll(/class="badge s-([a-z]+)"/g)].map((m) => m[1])[1] ?? '';
  };
  return { declare, health, consoleHealth };
}

void test('the API and the console check the declared port and health path, not :80/health', async (t) => {
  const { declare, health, consoleHealth } = await setup(t);

  // The demo service as declared by the fixture: GET /health at port 80.
  const demo = await health();
  assert.deepEqual(
    [demo.service, demo.state, demo.url, demo.status, demo.check],
    [
      'demo',
      'healthy',
      'http://198.18.0.10:80/health',
      200,
      'GET http://198.18.0.10:80/health expecting 200',
    ],
  );

  // nginx's site at / on port 8080: the LC answers 404 there, so the service is failing — a fixed
  // GET :80/health would have called it healthy.
  declare({ ports: [8080], health: { kind: 'http', path: '/', status: 200 } });
  const site = await health();
  assert.deepEqual(
    [site.service, site.state, site.url, site.status],
    ['web', 'failing', 'http://198.18.0.10:8080/', 404],
  );
  assert.match(site.error ?? '', /answered 404, expected 200/);
  assert.equal(await consoleHealth(), 'failing');

  // The declared status counts: 404 expected at / is healthy.
  declare({ ports: [8080], health: { kind: 'http', path: '/', status: 404 } });
  assert.deepEqual([(await health()).state, await consoleHealth()], ['healthy', 'healthy']);

  // Another declared path and port.
  declare({ ports: [8443], health: { kind: 'http', path: '/version', status: 200 } });
  const version = await health();
  assert.deepEqual([version.state, version.url], ['healthy', 'http://198.18.0.10:8443/version']);

  // A command check runs inside the LC (the in-memory LC's exec exits 0).
  declare({ ports: [5432], health: { kind: 'command', argv: ['pg_isready', '-q'] } });
  const command = await health();
  assert.deepEqual(
    [command.state, command.url, command.check],
    ['healthy', null, '"pg_isready -q" inside lc1'],
  );

  // ?path= asks for an HTTP GET instead, at the declared port unless ?port= is given.
  declare({ ports: [8080], health: { kind: 'http', path: '/', status: 200 } });
  const asked = await health('?path=/health');
  assert.deepEqual([asked.state, asked.url], ['healthy', 'http://198.18.0.10:8080/health']);
  assert.equal((await health('?path=/health&port=9000')).url, 'http://198.18.0.10:9000/health');

  // An LC that declares no service has nothing to check.
  declare(undefined);
  const none = await health();
  assert.deepEqual([none.service, none.state, none.url], [null, 'unknown', null]);
  assert.match(none.error ?? '', /lc1 declares no service; declare it with: understudy lc service set lc1/);
  assert.equal(await consoleHealth(), 'unknown');
});
