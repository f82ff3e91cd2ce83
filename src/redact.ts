/**
 * Value-based redaction: secrets are the values the config supplied (env values, header
 * values, URL credentials, resolved variables), wherever they turn up, under any key.
 */

export const MASK = '***';

/** Values shorter than this are too common to mask safely (`1`, `true`). */
const MIN_SECRET_LENGTH = 4;

/** A scrubber for one set of secret values. */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string> = []) {
    const unique = new Set<string>();

    for (const secret of secrets) {
      if (typeof secret === 'string' && secret.length >= MIN_SECRET_LENGTH) {
        unique.add(secret);
        const encoded = encodeURIComponent(secret);
        if (encoded !== secret) unique.add(encoded);
      }
    }

    // Longest first, so a secret containing another is masked whole.
    this.secrets = [...unique].sort((a, b) => b.length - a.length);
  }

  get size(): number {
    return this.secrets.length;
  }

  /** Masks every secret in a string. */
  string(text: string): string {
    let out = text;

    for (const secret of this.secrets) {
      if (out.includes(secret)) out = out.split(secret).join(MASK);
    }

    return out;
  }

  /** Masks every secret in any JSON-like value, returning a copy. */
  value<T>(input: T): T {
    if (this.secrets.length === 0) return input;

    return this.walk(input, new WeakSet()) as T;
  }

  /** A redactor that knows these secrets and another's. */
  with(other: Redactor): Redactor {
    return new Redactor([...this.secrets, ...other.secrets]);
  }

  private walk(input: unknown, seen: WeakSet<object>): unknown {
    if (typeof input === 'string') return this.string(input);
    if (input === null || typeof input !== 'object') return input;
    if (seen.has(input)) return '[circular]';
    seen.add(input);

    if (Array.isArray(input)) return input.map((item) => this.walk(item, seen));

    if (input instanceof Error) {
      const copy = new Error(this.string(input.message));
      copy.name = input.name;
      if (input.stack) copy.stack = this.string(input.stack);
      return copy;
    }

    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(input))
      out[this.string(key)] = this.walk(value, seen);

    return out;
  }
}
