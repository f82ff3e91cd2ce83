import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

import { serve, type Http2Bindings, type HttpBindings } from '@hono/node-server';

import type { Logger } from '../log.js';

/** The path the WebSocket stream is served on. */
export const STREAM_PATH = '/ws';

/** Handles a WebSocket upgrade on {@link STREAM_PATH}; `StreamServer.handleUpgrade` fits. */
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

type FetchCallback = (
  request: Request,
  env: HttpBindings | Http2Bindings,
) => Response | Promise<Response>;

export interface HttpServerOptions {
  /** The app to serve, as made by `createApp`. */
  app: { fetch: FetchCallback };
  /** Address to bind, such as `127.0.0.1`. */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** The `Http` service logger. */
  logger: Logger;
  /** Takes over upgrades on `/ws`; without it every upgrade is refused. */
  onUpgrade?: UpgradeHandler;
}

/** A listening HTTP server. */
export interface HttpServerHandle {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  /** Stops listening and ends open connections. Close the stream first: it owns its sockets. */
  close(): Promise<void>;
  server: Server;
}

/** Serves `app` on `host:port` and routes `/ws` upgrades to `onUpgrade`. */
export function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { app, host, port, logger, onUpgrade } = options;

  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port }) as Server;

    const onListenError = (err: Error): void => {
      reject(err);
    };

    // 'on', not 'once': a failed listen may emit more than one error.
    server.on('error', onListenError);
    server.once('listening', () => {
      server.off('error', onListenError);
      server.on('error', (err) => logger.error({ err }, 'http server error'));
      server.on('clientError', (err, socket) => socket.destroy(err));

      const bound = (server.address() as AddressInfo).port;
      resolve({ url: urlOf(host, bound), port: bound, close: () => closeServer(server), server });
    });

    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (onUpgrade && pathOf(request) === STREAM_PATH) {
        onUpgrade(request, socket, head);
        return;
      }

      refuseUpgrade(socket);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const end = url.indexOf('?');

  return end === -1 ? url : url.slice(0, end);
}

/** Answers an upgrade with a bare HTTP status and ends the socket. */
export function refuseUpgrade(socket: Duplex, status = 404, reason = 'Not Found'): void {
  socket.on('error', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function urlOf(host: string, port: number): string {
  const name = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}
