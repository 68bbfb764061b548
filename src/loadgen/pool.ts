/**
 * The keep-alive pool: at most `size` persistent connections. A request waits for a free one. The most
 * recently used idle connection is handed out first, so under light load surplus connections go idle
 * and the client closes them (after `idleTimeoutMs`) before a server's keep-alive timeout could race a
 * request. A connection the server closed (after a `Connection: close` reply, or while idle) is dropped
 * and replaced; a request is only ever written to a connection that is open at that moment.
 */
import { performance } from 'node:perf_hooks';
import { HttpConnection, type Target } from './connection.ts';

export interface PoolLease {
  connection: Promise<HttpConnection>;
  /** Gives up waiting (the request timed out in the queue). */
  cancel(): void;
}

interface Waiter {
  resolve: (connection: HttpConnection) => void;
  cancelled: boolean;
}

export class ConnectionPool {
  private readonly all = new Set<HttpConnection>();
  private readonly idle: HttpConnection[] = [];
  private readonly idleTimers = new Map<HttpConnection, NodeJS.Timeout>();
  private readonly idleSince = new Map<HttpConnection, number>();
  private waiters: Waiter[] = [];
  /** Connections opened over the pool's life. */
  opened = 0;

  constructor(private readonly options: { target: Target; size: number; idleTimeoutMs: number }) {}

  acquire(): PoolLease {
    const ready = this.takeIdle() ?? this.openIfRoom();
    if (ready) return { connection: Promise.resolve(ready), cancel: () => undefined };
    let waiter: Waiter | undefined;
    const connection = new Promise<HttpConnection>((resolve) => {
      waiter = { resolve, cancelled: false };
      this.waiters.push(waiter);
    });
    return {
      connection,
      cancel: () => {
        if (waiter) waiter.cancelled = true;
      },
    };
  }

  /** Returns a connection after its exchange (successful or not). */
  release(connection: HttpConnection): void {
    if (!connection.usable) {
      this.forget(connection);
      if (connection.closeAfter) connection.close();
      else connection.destroy();
      this.serveWaiters();
      return;
    }
    const waiter = this.nextWaiter();
    if (waiter) {
      waiter.resolve(connection);
      return;
    }
    this.idle.push(connection);
    this.idleSince.set(connection, performance.now());
    this.idleTimers.set(
      connection,
      setTimeout(() => {
        this.forget(connection);
        connection.close();
      }, this.options.idleTimeoutMs),
    );
  }

  /** Closes every connection; waiting requests are left to their timeouts. */
  closeAll(): void {
    for (const connection of [...this.all]) {
      this.forget(connection);
      connection.destroy();
    }
  }

  private takeIdle(): HttpConnection | undefined {
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      const idleMs = performance.now() - (this.idleSince.get(connection) ?? 0);
      this.clearIdleTimer(connection);
      if (connection.usable && idleMs < this.options.idleTimeoutMs) return connection;
      // Closed by the server while idle (never written to), or idle too long because the idle timer
      // ran late under load: dropped, so no request races the server closing it.
      this.forget(connection);
      if (connection.usable) connection.close();
    }
    return undefined;
  }

  private openIfRoom(): HttpConnection | undefined {
    if (this.all.size >= this.options.size) return undefined;
    const connection = new HttpConnection(this.options.target);
    this.opened += 1;
    this.all.add(connection);
    connection.onClosed(() => {
      const wasIdle = this.idle.includes(connection);
      this.forget(connection);
      if (wasIdle) this.serveWaiters();
    });
    return connection;
  }

  private nextWaiter(): Waiter | undefined {
    while (this.waiters.length > 0) {
      const waiter = this.waiters.shift();
      if (waiter && !waiter.cancelled) return waiter;
    }
    return undefined;
  }

  private serveWaiters(): void {
    for (;;) {
      while (this.waiters[0]?.cancelled) this.waiters.shift();
      if (this.waiters.length === 0) return;
      const connection = this.takeIdle() ?? this.openIfRoom();
      if (!connection) return;
      this.waiters.shift()?.resolve(connection);
    }
  }

  private forget(connection: HttpConnection): void {
    this.all.delete(connection);
    this.clearIdleTimer(connection);
    const index = this.idle.indexOf(connection);
    if (index !== -1) this.idle.splice(index, 1);
  }

  private clearIdleTimer(connection: HttpConnection): void {
    const timer = this.idleTimers.get(connection);
    if (timer) clearTimeout(timer);
    this.idleTimers.delete(connection);
    this.idleSince.delete(connection);
  }
}
