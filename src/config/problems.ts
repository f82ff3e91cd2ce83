import { SupervisorError } from '../errors.js';

/**
 * One finding about a config: an error refuses the config, a warning does not. `path` is a JSON
 * path such as `mcpServers.github.env.TOKEN` or `supervisor.health.intervalMs` (empty when the
 * finding is about the file as a whole). Messages never carry secret values.
 */
export interface ConfigProblem {
  severity: 'error' | 'warning';
  path: string;
  message: string;
}

/** Thrown by `loadConfigOrThrow` when a config has errors; `problems` lists all findings. */
export class ConfigError extends SupervisorError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[], file?: string) {
    const errors = problems.filter((p) => p.severity === 'error');
    const where = file ? ` in ${file}` : '';
    const noun = errors.length === 1 ? 'error' : 'errors';
    const first = errors[0] ? `: ${formatProblem(errors[0])}` : '';

    super('INVALID_CONFIG', `${errors.length} config ${noun}${where}${first}`, {
      problems,
      ...(file ? { file } : {}),
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Whether any problem is an error. */
export function hasErrors(problems: readonly ConfigProblem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}

/** One line per problem: `error  mcpServers.x.command: message`, in the order given. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map(formatProblem).join('\n');
}

function formatProblem(problem: ConfigProblem): string {
  const where = problem.path ? `${problem.path}: ` : '';
  return `${problem.severity}  ${where}${problem.message}`;
}

/** A JSON path segment: a key or an array index. */
export type PathSegment = string | number;

const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/;

/**
 * Appends segments to a JSON path: plain keys joined by dots, indexes in brackets, keys with
 * other characters (dots, slashes, spaces) quoted in brackets so the path stays unambiguous.
 */
export function joinPath(base: string, ...segments: PathSegment[]): string {
  let out = base;

  for (const segment of segments) {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
    } else if (PLAIN_KEY.test(segment)) {
      out += out ? `.${segment}` : segment;
    } else {
      out += `[${JSON.stringify(segment)}]`;
    }
  }

  return out;
}

/** Collects problems under one base path. */
export class ProblemList {
  readonly items: ConfigProblem[] = [];

  error(path: string, message: string): void {
    this.items.push({ severity: 'error', path, message });
  }

  warn(path: string, message: string): void {
    this.items.push({ severity: 'warning', path, message });
  }

  /** Reports each zod issue as an error at its path below `at`. */
  issues(
    at: string,
    issues: ReadonlyArray<{ path: readonly PropertyKey[]; message: string }>,
  ): void {
    for (const issue of issues) {
      const segments = issue.path.map((s) => (typeof s === 'number' ? s : String(s)));
      this.error(joinPath(at, ...segments), issue.message);
    }
  }

  add(problems: readonly ConfigProblem[]): void {
    this.items.push(...problems);
  }

  get hasErrors(): boolean {
    return hasErrors(this.items);
  }
}
