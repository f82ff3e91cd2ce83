import { fileURLToPath } from 'node:url';
import { createSupervisor } from '../../src/supervisor/create.js';
const EVERYTHING = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url));
const ARGS = { message: 'the quick brown fox jumps over the lazy dog' };
const sup = await createSupervisor({ servers: { e: { command: process.execPath, args: [EVERYTHING, 'stdio'], tools: { echo: { cacheable: false } } } }, settings: { 'health.intervalMs': 3_600_000 } });
await new Promise<void>((r) => { const u = sup.subscribe((t) => { if (t.to === 'closed') { u(); r(); } }); });
for (let i = 0; i < 40000; i++) await sup.callTool('e', 'echo', ARGS);
await sup.stop();
