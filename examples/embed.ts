/**
 * Embedding the supervisor as a library: no database, no port. Run with
 * `npx tsx examples/embed.ts`; the test suite runs `main()` too.
 */
import { createSupervisor, type Transition } from '../src/index.js';

export async function main(log: (line: string) => void = console.log): Promise<Transition[]> {
  const seen: Transition[] = [];
  const supervisor = await createSupervisor({
    servers: {
      everything: { command: 'npx', args: ['@modelcontextprotocol/server-everything'] },
    },
    settings: { 'health.intervalMs': 10_000 },
  });

  const unsubscribe = supervisor.subscribe((transition) => {
    seen.push(transition);
    log(`#${transition.seq} ${transition.server}: ${transition.from} -> ${transition.to}`);
  });

  try {
    await waitUntilClosed(supervisor, 'everything');
    const result = await supervisor.callTool('everything', 'echo', { message: 'hello' });
    const text = result.content.find((block) => block.type === 'text');
    log(`echo answered: ${text && 'text' in text ? text.text : '(no text)'}`);
  } finally {
    await supervisor.stop();
    unsubscribe();
  }

  return seen;
}

function waitUntilClosed(
  supervisor: Awaited<ReturnType<typeof createSupervisor>>,
  server: string,
): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      unsubscribe();
      resolve();
    };
    const unsubscribe = supervisor.subscribe((t) => {
      if (t.server === server && t.to === 'closed') done();
    });

    if (supervisor.server(server)?.state === 'closed') done();
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
