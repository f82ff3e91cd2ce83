/**
 * Host and Origin checks against DNS rebinding: a web page that got a hostile name to resolve
 * to 127.0.0.1 still sends its own name in `Host` and `Origin`, so both must name us.
 */

/** The names a loopback supervisor answers to. */
export const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'] as const;

/**
 * Decides whether `Host` and `Origin` values name this server. An allowed entry without a
 * port (`localhost`) matches only with the port the connection arrived on; an entry with a
 * port (`example.org:443`) matches exactly, for proxies that listen elsewhere.
 */
export class HostGuard {
  private readonly names = new Set<string>();
  private readonly exact = new Set<string>();

  /** @param allowed - host names, optionally with `:port`; default: the loopback names. */
  constructor(allowed: readonly string[] = LOOPBACK_HOSTS) {
    for (const entry of allowed) {
      const host = entry.toLowerCase();
      if (splitHost(host).port === null) this.names.add(host);
      else this.exact.add(host);
    }
  }

  /**
   * Whether a `Host` header value is ours.
   *
   * @param localPort - the port the connection arrived on; undefined when unknown (in-process
   *   requests), which lets any port pass for a portless entry.
   */
  allowsHost(host: string | undefined, localPort: number | undefined): boolean {
    if (!host) return false;

    const value = host.toLowerCase();
    if (this.exact.has(value)) return true;

    const { name, port } = splitHost(value);
    if (!this.names.has(name)) return false;
    if (localPort === undefined) return true;

    return port === null ? localPort === 80 : port === String(localPort);
  }

  /** Whether an `Origin` header value is ours; an absent Origin passes (not a browser). */
  allowsOrigin(origin: string | undefined, localPort: number | undefined): boolean {
    if (origin === undefined) return true;

    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }

    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;

    const defaultPort = url.protocol === 'https:' ? 443 : 80;
    const host = url.port === '' ? `${url.hostname}:${defaultPort}` : url.host;

    return this.allowsHost(host, localPort);
  }
}

function splitHost(host: string): { name: string; port: string | null } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!match) return { name: host, port: null };

  return { name: match[1] ?? host, port: match[2] ?? null };
}
