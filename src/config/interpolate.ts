import type { ConfigProblem } from './problems.js';

/** Where `${VAR}` references look for values. */
export interface InterpolationScope {
  /** The entry's own (already resolved) `env`, searched first. */
  local?: Readonly<Record<string, string>>;
  /** The supervisor's environment, searched second. */
  env: NodeJS.ProcessEnv;
}

/** A string with its references resolved, what went wrong, and the values put in. */
export interface Interpolated {
  value: string;
  problems: ConfigProblem[];
  /** Every value the environment supplied for a reference: masked wherever it turns up. */
  secrets: string[];
}

const REFERENCE = /\$\{([^}]*)\}/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_SHOWN = 40;

/**
 * Resolves `${VAR}`, `${VAR:-default}` and VS Code's `${env:VAR}` in one string. A reference
 * that cannot be resolved is left in place and reported at `path`; messages name variables,
 * never their values.
 */
export function interpolate(text: string, path: string, scope: InterpolationScope): Interpolated {
  const problems: ConfigProblem[] = [];
  const secrets: string[] = [];

  const value = text.replace(REFERENCE, (whole, inner: string) => {
    const resolved = resolveReference(inner, scope);

    if (typeof resolved === 'object' && 'problem' in resolved) {
      problems.push({ severity: 'error', path, message: resolved.problem });
      return whole;
    }

    // A default is written in the config file itself: it is no secret (a port, a host).
    if (typeof resolved === 'object') return resolved.written;

    if (resolved !== '') secrets.push(resolved);
    return resolved;
  });

  return { value, problems, secrets };
}

function resolveReference(
  inner: string,
  scope: InterpolationScope,
): string | { problem: string } | { written: string } {
  const expression = inner.trim();

  if (expression.startsWith('input:')) {
    return {
      problem:
        `\${${shorten(expression)}} asks a person for a value, which a supervisor cannot do: ` +
        'put the value in the environment or in env and use ${VAR}',
    };
  }

  const parsed = parseExpression(expression);
  if (!parsed) {
    return {
      problem:
        `unsupported variable form \${${shorten(expression)}}: ` +
        'only ${VAR} and ${VAR:-default} are resolved',
    };
  }

  const found = lookup(parsed.name, scope);
  if (parsed.fallback !== undefined && (found === undefined || found === '')) {
    return { written: parsed.fallback };
  }

  if (found === undefined) {
    return { problem: `variable ${parsed.name} is not set and has no default` };
  }

  return found;
}

function parseExpression(expression: string): { name: string; fallback?: string } | undefined {
  const bare = expression.startsWith('env:') ? expression.slice('env:'.length) : expression;
  const split = bare.indexOf(':-');
  const name = split === -1 ? bare : bare.slice(0, split);

  if (!NAME.test(name)) return undefined;
  if (split === -1) return { name };

  return { name, fallback: bare.slice(split + 2) };
}

function lookup(name: string, scope: InterpolationScope): string | undefined {
  if (scope.local && Object.hasOwn(scope.local, name)) return scope.local[name];

  const value = Object.hasOwn(scope.env, name) ? scope.env[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function shorten(text: string): string {
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}...` : text;
}
