/**
 * PostgreSQL for tests: a fresh database per use on the shared server (dropped after), and a
 * TCP proxy the test controls, to take the database away without touching the cluster.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';

import postgres from 'postgres';

export const ADMIN_URL =
  process.env.MCPS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Whether the shared PostgreSQL answers. */
export async function canReachPostgres(url = ADMIN_URL): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** A database of our own: its URL, a client on it, and `drop()`. */
export interface TestDatabase {
  name: string;
  url: string;
  sql: postgres.Sql;
  /** The URL with the host and port replaced (to go through a proxy). */
  urlVia(port: number): string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const name = `mcps_test_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);

  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sql = postgres(url.href, { max: 2, onnotice: () => {} });

  return {
    name,
    url: url.href,
    sql,
    urlVia(port: number): string {
      const via = new URL(url.href);
      via.hostname = '127.0.0.1';
      via.port = String(port);
      return via.href;
    },
    async drop(): Promise<void> {
      await sql.end({ timeout: 1 });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/**
 * A TCP proxy to PostgreSQL. `cut()` resets every connection and refuses new ones until
 * `restore()`; the shared cluster is never touched.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private up = true;
  port = 0;

  constructor(
    private readonly targetPort = Number(new URL(ADMIN_URL).port || 5432),
    private readonly targetHost = new URL(ADMIN_URL).hostname,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  async start(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this.port;
  }

  /** Resets every open connection and refuses new ones. */
  cut(): void {
    this.up = false;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  restore(): void {
    this.up = true;
  }

  /** Connections open through the proxy right now. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (!this.up) {
      client.resetAndDestroy();
      return;
    }

    const upstream = connect(this.targetPort, this.targetHost);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}

/** Waits until `check` holds, looking again every 20 ms (for real I/O only). */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;

  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);

    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
