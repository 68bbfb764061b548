/**
 * Client hosts understudy made on the bridge (the demo's load client: a network namespace with one
 * veth port on the bridge). They are recorded so that `host destroy` removes them with the bridge,
 * and only them.
 */
import fs from 'node:fs';
import { exec } from '../core/index.ts';
import type { Db } from '../store/index.ts';
import { linkExists } from './network.ts';

export interface ClientHostRecord {
  /** The client's network namespace. */
  netns: string;
  /** The host end of its veth pair, a port of the bridge. */
  hostIf: string;
}

export function recordClientHost(db: Db, client: ClientHostRecord): void {
  db.prepare('INSERT OR REPLACE INTO host_clients (netns, host_if, created_at) VALUES (?, ?, ?)').run(
    client.netns,
    client.hostIf,
    new Date().toISOString(),
  );
}

export function forgetClientHost(db: Db, netns: string): void {
  db.prepare('DELETE FROM host_clients WHERE netns = ?').run(netns);
}

export function listClientHosts(db: Db): ClientHostRecord[] {
  return (
    db.prepare('SELECT netns, host_if FROM host_clients ORDER BY created_at').all() as {
      netns: string;
      host_if: string;
    }[]
  ).map((r) => ({ netns: r.netns, hostIf: r.host_if }));
}

/** Deletes every recorded client host (its veth, then its namespace) and its record. Idempotent. */
export async function removeClientHosts(db: Db): Promise<void> {
  for (const client of listClientHosts(db)) {
    if (linkExists(client.hostIf)) await exec(['ip', 'link', 'del', client.hostIf]);
    if (fs.existsSync(`/run/netns/${client.netns}`)) await exec(['ip', 'netns', 'del', client.netns]);
    forgetClientHost(db, client.netns);
  }
}
