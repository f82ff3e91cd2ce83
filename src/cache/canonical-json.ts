import { SupervisorError } from '../errors.js';

/**
 * Serializes a value as JSON in one canonical form: object keys sorted at every depth, arrays
 * in their own order, and otherwise exactly what `JSON.stringify` writes (undefined, function
 * and symbol members dropped from objects and written `null` in arrays, `toJSON` honoured,
 * non-finite numbers written `null`). Two values that differ only in key order give the same
 * string, so it can key a cache.
 *
 * @throws SupervisorError `INVALID_ARGUMENTS` on a cycle, a BigInt, or a top-level value that
 *   has no JSON form (undefined, a function, a symbol); `fields.path` names where (`$.a[0]`).
 */
export function canonicalJson(value: unknown): string {
  let out: string | undefined;

  try {
    out = write(value, []);
  } catch (err) {
    if (err instanceof Unwritable) {
      throw new SupervisorError('INVALID_ARGUMENTS', err.message, { path: pathText(err.path) });
    }

    throw err;
  }

  if (out === undefined) {
    throw new SupervisorError('INVALID_ARGUMENTS', 'value has no JSON form', { path: '$' });
  }

  return out;
}

/**
 * Raised deep inside the walk; each level on the way out adds its key, so the hot path never
 * builds a path it will not need.
 */
class Unwritable extends Error {
  readonly path: Array<string | number> = [];
}

/** Returns undefined for values JSON leaves out (undefined, functions, symbols). */
function write(value: unknown, ancestors: object[]): string | undefined {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new Unwritable('a BigInt has no JSON form');
    case 'object':
      return value === null ? 'null' : writeObject(value, ancestors);
    default:
      return undefined;
  }
}

function writeObject(value: object, ancestors: object[]): string | undefined {
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return write((value as { toJSON: () => unknown }).toJSON(), ancestors);
  }

  if (value instanceof Number || value instanceof String || value instanceof Boolean) {
    return write(value.valueOf(), ancestors);
  }

  // Only the chain of open containers counts: a value shared by two siblings is not a cycle.
  if (ancestors.includes(value)) {
    throw new Unwritable('a cyclic value has no JSON form');
  }

  ancestors.push(value);
  const out = Array.isArray(value)
    ? writeArray(value, ancestors)
    : writeRecord(value as Record<string, unknown>, ancestors);
  ancestors.pop();

  return out;
}

function writeArray(value: unknown[], ancestors: object[]): string {
  let out = '[';

  for (let i = 0; i < value.length; i++) {
    if (i > 0) {
      out += ',';
    }

    try {
      out += write(value[i], ancestors) ?? 'null';
    } catch (err) {
      throw withKey(err, i);
    }
  }

  return out + ']';
}

function writeRecord(value: Record<string, unknown>, ancestors: object[]): string {
  const keys = Object.keys(value);
  if (!isSorted(keys)) {
    keys.sort();
  }

  let out = '{';

  for (const key of keys) {
    let member: string | undefined;

    try {
      member = write(value[key], ancestors);
    } catch (err) {
      throw withKey(err, key);
    }

    if (member !== undefined) {
      out += (out.length === 1 ? '' : ',') + quote(key) + ':' + member;
    }
  }

  return out + '}';
}

/** Characters JSON.stringify escapes: quote, backslash, controls, and any surrogate half. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string literal; plain text skips the general (slower) escaper. */
function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : '"' + text + '"';
}

/** Arguments are often written in order already; checking is cheaper than sorting. */
function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      return false;
    }
  }

  return true;
}

function withKey(err: unknown, key: string | number): unknown {
  if (err instanceof Unwritable) {
    err.path.unshift(key);
  }

  return err;
}

/** The JSON path of a value, as `$.a[0].b`. */
function pathText(path: Array<string | number>): string {
  return path.reduce<string>(
    (text, key) => (typeof key === 'number' ? `${text}[${key}]` : `${text}.${key}`),
    '$',
  );
}
