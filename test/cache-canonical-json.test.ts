import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalJson } from '../src/cache/canonical-json.js';
import { isSupervisorError } from '../src/errors.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }

  throw new Error('expected a throw');
}

/** The same JSON value with the keys of every object inserted in reverse order. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(reversedKeys);
  }

  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).reverse();
    return Object.fromEntries(entries.map(([k, v]) => [k, reversedKeys(v)]));
  }

  return value;
}

describe('canonicalJson', () => {
  it('sorts object keys at every depth', () => {
    const text = canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 3 } });

    expect(text).toBe('{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}');
  });

  it('gives the same text for values that differ only in key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(reversedKeys(value))).toBe(canonicalJson(value));
      }),
    );
  });

  it('writes text that parses back to what JSON.stringify would carry', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('keeps array order', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
  });

  it('drops undefined, function and symbol members of objects as JSON.stringify does', () => {
    const value = { a: undefined, b: () => 1, c: Symbol('s'), d: 1 };

    expect(canonicalJson(value)).toBe('{"d":1}');
  });

  it('writes undefined array members as null as JSON.stringify does', () => {
    expect(canonicalJson([undefined, () => 1, 1])).toBe('[null,null,1]');
  });

  it('writes numbers exactly as JSON.stringify does', () => {
    const numbers = [0, -0, 0.1, 1e21, -1.5e-7, 2 ** 53, NaN, Infinity, -Infinity];

    expect(canonicalJson(numbers)).toBe(JSON.stringify(numbers));
  });

  it('honours toJSON as JSON.stringify does', () => {
    const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));

    expect(canonicalJson({ at })).toBe('{"at":"2024-01-02T03:04:05.000Z"}');
  });

  it('escapes strings and keys as JSON.stringify does, surrogates included', () => {
    const value = { emoji: '✓ 😀', lone: 'x\ud800y', 'q"\n': 'line\u0000\u2028"' };

    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it('accepts a value shared by two members, which is not a cycle', () => {
    const shared = { x: 1 };

    expect(canonicalJson({ a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}]}');
  });

  it('throws INVALID_ARGUMENTS naming the path of a cycle', () => {
    const value: { a: Array<Record<string, unknown>> } = { a: [{}] };
    value.a[0]!.back = value;

    const err = thrown(() => canonicalJson(value));

    expect(isSupervisorError(err) && err.code).toBe('INVALID_ARGUMENTS');
    expect(isSupervisorError(err) && err.fields.path).toBe('$.a[0].back');
  });

  it('throws INVALID_ARGUMENTS on a BigInt', () => {
    const err = thrown(() => canonicalJson({ n: 10n }));

    expect(isSupervisorError(err) && err.code).toBe('INVALID_ARGUMENTS');
    expect(isSupervisorError(err) && err.fields.path).toBe('$.n');
  });

  it('throws INVALID_ARGUMENTS on a top-level value with no JSON form', () => {
    const err = thrown(() => canonicalJson(undefined));

    expect(isSupervisorError(err) && err.code).toBe('INVALID_ARGUMENTS');
  });
});
