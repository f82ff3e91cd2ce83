/**
 * The little SQL surface both adapters share: the queries in {@link SqlStore} and the migrations
 * are written once, with `$n` parameters, and run through whichever driver is underneath.
 */

/** One connection or transaction that runs statements. */
export interface SqlSession {
  /** Runs one statement with `$1`-style parameters and returns its rows. */
  query<Row extends object>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs a script of several statements without parameters. */
  exec(text: string): Promise<void>;
}

/** A database handle that can also open transactions. */
export interface SqlDriver extends SqlSession {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlSession) => Promise<T>): Promise<T>;
}
