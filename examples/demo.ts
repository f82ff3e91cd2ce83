/**
 * The demo launcher behind `npm start`: serves the remote member of the example fleet
 * (server-everything over Streamable HTTP) and brings it back a few seconds after it dies, beside
 * `mcp-supervisor start --config examples/mcp.json`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const remotePort = process.env.DEMO_REMOTE_PORT ?? '3001';
const restartDelayMs = 3_000;
const everything = require.resolve('@modelcontextprotocol/server-everything/dist/index.js', {
  paths: [root],
});

let remote: ChildProcess | null = null;
let stopping = false;

function startRemote(): void {
  remote = spawn(process.execPath, [everything, 'streamableHttp'], {
    cwd: root,
    env: { ...process.env, PORT: remotePort },
    stdio: ['ignore', 'ignore', 'inherit'],
    // Its own process group: a Ctrl-C must not kill it before the supervisor has stopped.
    detached: true,
  });
  process.stderr.write(`demo: remote member pid ${remote.pid} on port ${remotePort}\n`);

  remote.on('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(
      `demo: remote member exited (${signal ?? code}); back in ${restartDelayMs} ms\n`,
    );
    setTimeout(startRemote, restartDelayMs);
  });
}

startRemote();

const supervisor = spawn(
  process.execPath,
  [
    path.join(root, 'dist/src/cli.js'),
    'start',
    '--config',
    'examples/mcp.json',
    ...process.argv.slice(2),
  ],
  {
    cwd: root,
    env: { ...process.env, DEMO_REMOTE_PORT: remotePort },
    stdio: 'inherit',
    // Its own process group: a Ctrl-C reaches it once, forwarded below, not twice.
    detached: true,
  },
);

supervisor.on('exit', (code) => {
  stopping = true;
  remote?.kill('SIGTERM');
  process.exit(code ?? 0);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopping = true;
    supervisor.kill(signal);
  });
}
