/**
 * The raw JSONC parse tree: kept instead of a plain parse because a plain parse silently keeps
 * the last of two duplicate keys, and a duplicate server name must be an error.
 */
import { parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';

import { joinPath, type ProblemList } from './problems.js';

export type { Node } from 'jsonc-parser';

/** Syntax errors beyond this many are mostly echoes of the first. */
const MAX_SYNTAX_ERRORS = 5;

const DESCRIPTIONS: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'malformed number',
  PropertyNameExpected: 'expected a property name in double quotes',
  ValueExpected: 'expected a value',
  ColonExpected: 'expected a colon',
  CommaExpected: 'expected a comma',
  CloseBraceExpected: 'expected a closing brace',
  CloseBracketExpected: 'expected a closing bracket',
  EndOfFileExpected: 'expected the end of the file',
  UnexpectedEndOfComment: 'unterminated comment',
  UnexpectedEndOfString: 'unterminated string',
};

/**
 * Parses JSON with comments and trailing commas. Syntax errors are reported with their line
 * and column (1-based) and give no tree.
 */
export function parseDocument(text: string, problems: ProblemList): Node | undefined {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const errors: ParseError[] = [];
  const root = parseTree(source, errors, { allowTrailingComma: true, disallowComments: false });

  for (const error of errors.slice(0, MAX_SYNTAX_ERRORS)) {
    const { line, column } = position(source, error.offset);
    const code = printParseErrorCode(error.error);
    const what = Object.hasOwn(DESCRIPTIONS, code) ? DESCRIPTIONS[code] : code;
    problems.error('', `syntax error at line ${line}, column ${column}: ${what}`);
  }

  if (errors.length > 0) return undefined;

  if (!root) problems.error('', 'the config is empty');
  return root;
}

/** The properties of an object node in document order, duplicates included. */
export function propertiesOf(node: Node): Array<{ key: string; value: Node }> {
  const out: Array<{ key: string; value: Node }> = [];

  for (const property of node.children ?? []) {
    const [keyNode, value] = property.children ?? [];
    if (keyNode && value && typeof keyNode.value === 'string') {
      out.push({ key: keyNode.value, value });
    }
  }

  return out;
}

/**
 * The plain value of a node (the last duplicate key wins, as in `JSON.parse`). Keys are own
 * properties even when named `__proto__`.
 */
export function toValue(node: Node): unknown {
  if (node.type === 'array') return (node.children ?? []).map(toValue);
  if (node.type !== 'object') return node.value;

  const out: Record<string, unknown> = {};
  for (const { key, value } of propertiesOf(node)) {
    Object.defineProperty(out, key, {
      value: toValue(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }

  return out;
}

/** Warns about each duplicate key anywhere below a node (server names are checked apart). */
export function warnDuplicateKeys(node: Node, at: string, problems: ProblemList): void {
  if (node.type === 'array') {
    (node.children ?? []).forEach((child, i) =>
      warnDuplicateKeys(child, joinPath(at, i), problems),
    );
    return;
  }

  if (node.type !== 'object') return;

  const seen = new Set<string>();
  for (const { key, value } of propertiesOf(node)) {
    const path = joinPath(at, key);

    if (seen.has(key)) problems.warn(path, `duplicate key "${key}": the last one is used`);
    seen.add(key);
    warnDuplicateKeys(value, path, problems);
  }
}

function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;

  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}
