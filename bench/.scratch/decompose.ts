import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { ProcessGroupTransport } from '../../src/mcp/stdio-transport.js';
import { silentLogger } from '../../src/log.js';
import { Redactor } from '../../src/redact.js';
import { createSupervisor } from '../../src/supervisor/create.js';

const EVERYTHING = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url));
const ARGS = { message: 'the quick brown fox jumps over the lazy dog' };

async function sdkClient(): Promise<Client> {
  const c = new Client({ name: 'b', version: '0' }, { capabilities: {} });
  await c.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' }));
  await c.listTools();
  return c;
}
async function pgClient(): Promise<Client> {
  const c = new Client({ name: 'b', version: '0' }, { capabilities: {} });
  await c.connect(new ProcessGroupTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], env: {}, graceMs: 2000, stderrTailBytes: 65536, logger: silentLogger(), redactor: new Redactor([]) }));
  await c.listTools();
  return c;
}
const sup = await createSupervisor({ servers: { e: { command: process.execPath, args: [EVERYTHING, 'stdio'], tools: { echo: { cacheable: false } } } }, settings: { 'health.intervalMs': 3_600_000 } });
await new Promise<void>((r) => { const u = sup.subscribe((t) => { if (t.to === 'closed') { u(); r(); } }); });
const a = await sdkClient(), a2 = await sdkClient(), b = await sdkClient(), c = await pgClient(), b1 = await sdkClient(), b2 = await sdkClient(), b3 = await sdkClient();
const opts = { timeout: 30000, maxTotalTimeout: 300000, resetTimeoutOnProgress: true, onprogress: () => undefined };
const sides: Record<string, () => Promise<unknown>> = {
  A_sdk: () => a.callTool({ name: 'echo', arguments: ARGS }),
  A2_sdk_again: () => a2.callTool({ name: 'echo', arguments: ARGS }),
  B_sdk_with_opts: () => b.callTool({ name: 'echo', arguments: ARGS }, CallToolResultSchema, opts),
  B1_onprogress_only: () => b1.callTool({ name: 'echo', arguments: ARGS }, CallToolResultSchema, { onprogress: () => undefined }),
  B2_timeouts_only: () => b2.callTool({ name: 'echo', arguments: ARGS }, CallToolResultSchema, { timeout: 30000, maxTotalTimeout: 300000, resetTimeoutOnProgress: true }),
  B3_meta_token_manual: () => b3.callTool({ name: 'echo', arguments: ARGS, _meta: { progressToken: 999999 } }),
  C_pgtransport: () => c.callTool({ name: 'echo', arguments: ARGS }),
  E_supervisor: () => sup.callTool('e', 'echo', ARGS),
};
const samples: Record<string, number[]> = {};
for (const k of Object.keys(sides)) samples[k] = [];
for (const k of Object.keys(sides)) for (let i = 0; i < 500; i++) await sides[k]!();
const keys = Object.keys(sides);
for (let r = 0; r < 40; r++) {
  const order = r % 2 ? [...keys].reverse() : keys;
  for (const k of order) for (let i = 0; i < 200; i++) { const s = process.hrtime.bigint(); await sides[k]!(); samples[k]!.push(Number(process.hrtime.bigint() - s)); }
}
for (const k of keys) { const s = samples[k]!.sort((x, y) => x - y); console.log(k.padEnd(20), (s[s.length >> 1]! / 1000).toFixed(1), (s[Math.floor(s.length * 0.95)]! / 1000).toFixed(1)); }
await Promise.all([a.close(), a2.close(), b.close(), c.close(), b1.close(), b2.close(), b3.close(), sup.stop()]);
