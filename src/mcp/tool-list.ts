import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';

import type { Logger } from '../log.js';
import { diffTools } from './tools-diff.js';
import type { Tool, ToolsDiff } from './types.js';

/** Quiet time (ms) after `notifications/tools/list_changed` before the list is refetched. */
export const LIST_CHANGED_DEBOUNCE_MS = 100;

/** More pages than this from `tools/list` is a server bug, not a tool list. */
const MAX_TOOL_PAGES = 1000;

/**
 * Every tool of a server, following `nextCursor` to the end. A server that does not offer
 * tools (no `tools` capability) has none; a cursor seen twice is an error, not a loop.
 */
export async function listAllTools(client: Client, options: RequestOptions): Promise<Tool[]> {
  if (!client.getServerCapabilities()?.tools) return [];

  const tools: Tool[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;

  for (let page = 0; page < MAX_TOOL_PAGES; page += 1) {
    const result = await client.listTools(cursor ? { cursor } : undefined, options);
    tools.push(...result.tools);
    if (!result.nextCursor) return tools;
    if (seen.has(result.nextCursor)) throw new Error('tools/list repeated a cursor');

    cursor = result.nextCursor;
    seen.add(cursor);
  }

  throw new Error(`tools/list returned more than ${MAX_TOOL_PAGES} pages`);
}

export interface ToolListRefresherOptions {
  /** Fetches the full list again. */
  fetch: () => Promise<Tool[]>;
  /** The list the diff is taken against. */
  current: () => readonly Tool[];
  /** Whether the connection still wants refreshes. */
  live: () => boolean;
  /** Takes the new list and its diff. */
  apply: (tools: Tool[], diff: ToolsDiff) => void;
  logger: Logger;
}

/**
 * Debounced refetch after `notifications/tools/list_changed`: a burst of notifications costs
 * one `tools/list`, and a notification during a refetch schedules exactly one more.
 */
export class ToolListRefresher {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;

  constructor(private readonly options: ToolListRefresherOptions) {}

  /** A change was announced: refetch once the burst is over. */
  schedule(): void {
    if (!this.options.live()) return;
    if (this.timer) clearTimeout(this.timer);

    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, LIST_CHANGED_DEBOUNCE_MS);
    this.timer.unref();
  }

  /** Drops any pending refetch. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async run(): Promise<void> {
    if (!this.options.live()) return;
    if (this.running) {
      this.again = true;
      return;
    }

    this.running = true;
    try {
      const tools = await this.options.fetch();
      if (!this.options.live()) return;

      const diff = diffTools(this.options.current(), tools);
      this.options.logger.debug({ ...diff }, 'tool list refreshed');
      this.options.apply(tools, diff);
    } catch (error) {
      if (this.options.live()) this.options.logger.warn({ err: error }, 'tool list refresh failed');
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }
}
