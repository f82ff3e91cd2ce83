/**
 * Who a request or a stream subscriber acts as: a role and what it may see. Every answer and
 * every frame about a server passes through {@link Principal.sees}.
 */

/** `admin` may do everything; `viewer` may read and call the tools of the servers it sees. */
export type UserRole = 'admin' | 'viewer';

/** The roles, in the order the docs list them. */
export const USER_ROLES = ['admin', 'viewer'] as const satisfies readonly UserRole[];

/**
 * Which servers a user sees: by name, by tag, or both (either one matching is enough).
 * Neither given: every server.
 */
export interface VisibilityRule {
  servers?: readonly string[];
  tags?: readonly string[];
}

/** The identity a checked token gives, with its role and visibility rule. */
export class Principal {
  private readonly names: ReadonlySet<string> | null;
  private readonly tags: ReadonlySet<string> | null;

  /**
   * @param user - the user name; undefined when no users are configured (open loopback API).
   * @param role - what the user may do.
   * @param rule - what the user may see; admins always see everything.
   */
  constructor(
    readonly user: string | undefined,
    readonly role: UserRole,
    rule: VisibilityRule = {},
  ) {
    const limited = role !== 'admin' && (rule.servers !== undefined || rule.tags !== undefined);

    this.names = limited ? new Set(rule.servers ?? []) : null;
    this.tags = limited ? new Set(rule.tags ?? []) : null;
  }

  /** Whether this principal may act as an admin. */
  get isAdmin(): boolean {
    return this.role === 'admin';
  }

  /** Whether every server is visible, whatever its name or tags. */
  get seesAll(): boolean {
    return this.names === null;
  }

  /**
   * Principals with the same key see exactly the same frames, so a frame is filtered and
   * serialized once per key rather than once per subscriber.
   */
  get visibilityKey(): string {
    if (this.names === null || this.tags === null) return `${this.role}:*`;

    return `${this.role}:${[...this.names].sort().join(',')}|${[...this.tags].sort().join(',')}`;
  }

  /** Whether the server `name` (carrying `tags`) is visible to this principal. */
  sees(name: string, tags: readonly string[] = []): boolean {
    if (this.names === null || this.tags === null) return true;
    if (this.names.has(name)) return true;

    return tags.some((tag) => this.tags?.has(tag) === true);
  }
}

/** The principal of every request when no users are configured: an anonymous admin. */
export const ANONYMOUS = new Principal(undefined, 'admin');
