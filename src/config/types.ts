import type { Settings } from './settings.js';

/** A transport kind after the config's spelling has been normalized. */
export type TransportKind = 'stdio' | 'http' | 'sse';

/** Per-tool options from an entry's `tools.<name>` block. */
export interface ToolOptions {
  timeoutMs?: number;
  cacheable?: boolean;
  ttlMs?: number;
}

/**
 * One server entry after validation and `${VAR}` resolution: what the runtime works from.
 * `secrets` lists the values that must never be shown (env values, header values, URL
 * credentials and query values, resolved variables).
 */
export interface ServerEntry {
  /** The safe name (`[A-Za-z0-9_.-]{1,64}`) used everywhere. */
  name: string;
  /** The name as written in the config, when it had to be derived. */
  originalName?: string;
  transport: TransportKind;
  /** For remote entries without a `type`: try Streamable HTTP, then SSE on a 4xx. */
  fallbackToSse: boolean;
  command?: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  url?: string;
  headers: Record<string, string>;
  enabled: boolean;
  tags: string[];
  /** Settings from the entry's own `supervisor` block (and `restart`). */
  settings: Partial<Settings>;
  tools: Record<string, ToolOptions>;
  secrets: string[];
  /** Where the entry came from. */
  source: 'config' | 'api';
}
