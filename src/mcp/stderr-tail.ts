import { StringDecoder } from 'node:string_decoder';

import type { Redactor } from '../redact.js';

/**
 * The bounded, scrubbed tail of a server's stderr. Lines are scrubbed whole, before they are
 * kept, so cutting the tail to size can never leave half a secret unmasked.
 */
export class StderrTail {
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  private pending = '';
  private last = '';

  /**
   * @param maxBytes the most stderr kept (bytes, `stderr.tailBytes`, default 65536)
   * @param redactor masks the server's secret values
   */
  constructor(
    private readonly maxBytes: number,
    private readonly redactor: Redactor,
  ) {}

  /** Takes a chunk; returns the complete lines it finished, scrubbed. */
  push(chunk: Buffer | string): string[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const parts = (this.pending + text).split('\n');
    this.pending = parts.pop() ?? '';

    // A line that never ends must not grow without bound: keep it as a line of its own.
    if (this.pending.length > this.maxBytes) {
      parts.push(this.pending);
      this.pending = '';
    }

    return parts.map((line) => this.keep(line));
  }

  /** Keeps whatever partial line is left (the stream ended). */
  flush(): string[] {
    const rest = this.pending + this.decoder.end();
    this.pending = '';

    return rest.length > 0 ? [this.keep(rest)] : [];
  }

  /** The scrubbed tail, at most `maxBytes` bytes. */
  text(): string {
    const all = this.tail + this.redactor.string(this.pending);
    const bytes = Buffer.from(all, 'utf8');
    if (bytes.length <= this.maxBytes) return all;

    return bytes.subarray(bytes.length - this.maxBytes).toString('utf8');
  }

  /** The last non-empty line, scrubbed (the partial one if it has text). */
  lastLine(): string {
    const partial = this.pending.trim();

    return partial.length > 0 ? this.redactor.string(partial) : this.last;
  }

  private keep(raw: string): string {
    const line = this.redactor.string(raw.replace(/\r$/, ''));
    this.tail += line + '\n';
    if (line.trim().length > 0) this.last = line.trim();

    // Trim only once the tail is well past its bound, so trimming stays cheap.
    if (this.tail.length > this.maxBytes * 2) this.tail = this.tail.slice(-this.maxBytes);

    return line;
  }
}
