import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ConfigError,
  formatProblems,
  hasErrors,
  loadConfigFile,
  loadConfigOrThrow,
  parseConfigText,
  type ConfigProblem,
} from '../src/config/load.js';
import { isSupervisorError } from '../src/errors.js';
import { parseSettings } from '../src/config/settings.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/configs/', import.meta.url));

function parse(config: unknown, env: NodeJS.ProcessEnv = {}) {
  return parseConfigText(JSON.stringify(config), { env });
}

function errors(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.filter((p) => p.severity === 'error');
}

describe('parseConfigText', () => {
  it('reads the example people paste from their clients', () => {
    const text =
      '{"mcpServers": {"everything": {"command": "npx", "args":' +
      ' ["@modelcontextprotocol/server-everything"]}}}';
    const loaded = parseConfigText(text, { env: {} });

    expect(loaded.problems).toEqual([]);
    expect(loaded.servers).toEqual([
      expect.objectContaining({
        name: 'everything',
        transport: 'stdio',
        command: 'npx',
        args: ['@modelcontextprotocol/server-everything'],
        enabled: true,
        source: 'config',
      }),
    ]);
  });

  it('reads JSONC with comments and trailing commas', () => {
    const text = `{
      // the client's servers
      "mcpServers": {
        /* a block comment */
        "a": { "command": "x", "args": ["1",], },
      },
    }`;
    const loaded = parseConfigText(text, { env: {} });

    expect(loaded.problems).toEqual([]);
    expect(loaded.servers.map((s) => s.args)).toEqual([['1']]);
  });

  it('names the line and column of a syntax error', () => {
    const text = '{\n  "mcpServers": {\n    "a": { "command" "x" }\n  }\n}';
    const loaded = parseConfigText(text, { env: {} });

    expect(loaded.servers).toEqual([]);
    expect(errors(loaded.problems)[0]).toEqual({
      severity: 'error',
      path: '',
      message: 'syntax error at line 3, column 22: expected a colon',
    });
  });

  it('refuses an empty text', () => {
    expect(hasErrors(parseConfigText('  \n', {}).problems)).toBe(true);
  });

  it('refuses a top level that is not an object', () => {
    const loaded = parseConfigText('[1, 2]', {});

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['']);
  });

  it('reads the servers key that VS Code writes', () => {
    const loaded = parse({ servers: { fs: { type: 'stdio', command: 'x' } } });

    expect(loaded.servers.map((s) => s.name)).toEqual(['fs']);
    expect(loaded.problems).toEqual([]);
  });

  it('reports problems of a VS Code config under the servers path', () => {
    const loaded = parse({ servers: { fs: { command: 7 } } });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['servers.fs.command']);
  });

  it('refuses mcpServers and servers side by side', () => {
    const loaded = parse({ mcpServers: {}, servers: {} });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['servers']);
  });

  it('refuses an mcpServers block that is not an object', () => {
    const loaded = parse({ mcpServers: [] });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['mcpServers']);
  });

  it('warns when no servers block is given', () => {
    const loaded = parse({ supervisor: {} });

    expect(loaded.problems).toEqual([
      { severity: 'warning', path: '', message: expect.stringContaining('no mcpServers') },
    ]);
  });

  it('warns about an unknown top-level key', () => {
    const loaded = parse({ mcpServers: {}, extras: 1 });

    expect(loaded.problems).toEqual([
      { severity: 'warning', path: 'extras', message: 'unknown top-level key "extras"; ignored' },
    ]);
  });

  it('passes $schema without a word', () => {
    expect(parse({ $schema: 'https://example.com/s.json', mcpServers: {} }).problems).toEqual([]);
  });

  it('warns that VS Code inputs are ignored', () => {
    const loaded = parse({ inputs: [], servers: {} });

    expect(loaded.problems.map((p) => [p.severity, p.path])).toEqual([['warning', 'inputs']]);
  });

  it('keeps the entries of a config in file order', () => {
    const loaded = parse({ mcpServers: { b: { command: 'x' }, a: { url: 'https://a.example' } } });

    expect(loaded.servers.map((s) => s.name)).toEqual(['b', 'a']);
  });

  it('leaves out an entry with errors and keeps the rest', () => {
    const loaded = parse({ mcpServers: { bad: {}, good: { command: 'x' } } });

    expect(loaded.servers.map((s) => s.name)).toEqual(['good']);
    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['mcpServers.bad']);
  });

  it('resolves variables from the given environment', () => {
    const loaded = parse({ mcpServers: { a: { command: '${BIN}' } } }, { BIN: '/usr/bin/srv' });

    expect(loaded.servers[0]?.command).toBe('/usr/bin/srv');
  });

  it('resolves a relative cwd against the config file directory', () => {
    const filename = path.join(os.tmpdir(), 'cfg', 'mcp.json');
    const text = JSON.stringify({ mcpServers: { a: { command: 'x', cwd: 'work' } } });
    const loaded = parseConfigText(text, { env: {}, filename });

    expect(loaded.servers[0]?.cwd).toBe(path.join(os.tmpdir(), 'cfg', 'work'));
    expect(loaded.path).toBe(filename);
  });
});

describe('parseConfigText: server names', () => {
  it('refuses a duplicate server name that a JSON parser would hide', () => {
    const text = '{"mcpServers": {"gh": {"command": "a"}, "gh": {"command": "b"}}}';
    const loaded = parseConfigText(text, { env: {} });

    expect(errors(loaded.problems)).toEqual([
      { severity: 'error', path: 'mcpServers.gh', message: 'duplicate server name "gh"' },
    ]);
  });

  it('keeps the first of two duplicate entries', () => {
    const text = '{"mcpServers": {"gh": {"command": "a"}, "gh": {"command": "b"}}}';

    expect(parseConfigText(text, { env: {} }).servers.map((s) => s.command)).toEqual(['a']);
  });

  it('accepts an unsafe name under its derived name with a quoted path', () => {
    const loaded = parse({ mcpServers: { '@acme/search': { command: 'x' } } });

    expect(loaded.servers[0]?.name).toBe('-acme-search');
    expect(loaded.problems).toEqual([
      {
        severity: 'warning',
        path: 'mcpServers["@acme/search"]',
        message: expect.stringMatching(/"@acme\/search".*"-acme-search"/),
      },
    ]);
  });

  it('refuses two names that derive to the same safe name', () => {
    const loaded = parse({
      mcpServers: { 'my server': { command: 'a' }, 'my/server': { command: 'b' } },
    });

    expect(errors(loaded.problems)).toEqual([
      {
        severity: 'error',
        path: 'mcpServers["my/server"]',
        message: 'server names "my server" and "my/server" both become "my-server"',
      },
    ]);
    expect(loaded.servers.map((s) => s.originalName)).toEqual(['my server']);
  });

  it('refuses an unsafe name that derives to a name already in use', () => {
    const loaded = parse({
      mcpServers: { 'my-server': { command: 'a' }, 'my server': { command: 'b' } },
    });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['mcpServers["my server"]']);
  });

  it('warns about a duplicate key inside an entry', () => {
    const text = '{"mcpServers": {"a": {"command": "x", "command": "y"}}}';
    const loaded = parseConfigText(text, { env: {} });

    expect(loaded.problems).toEqual([
      {
        severity: 'warning',
        path: 'mcpServers.a.command',
        message: 'duplicate key "command": the last one is used',
      },
    ]);
    expect(loaded.servers[0]?.command).toBe('y');
  });

  it('refuses a duplicate top-level key', () => {
    const text = '{"mcpServers": {"a": {"command": "x"}}, "mcpServers": {}}';

    expect(errors(parseConfigText(text, {}).problems).map((p) => p.path)).toEqual(['mcpServers']);
  });
});

describe('parseConfigText: the supervisor block', () => {
  it('reads settings in nested form', () => {
    const loaded = parse({ mcpServers: {}, supervisor: { health: { intervalMs: 10_000 } } });

    expect(loaded.settings).toEqual({ 'health.intervalMs': 10_000 });
  });

  it('reads settings in flat dotted form', () => {
    const loaded = parse({ mcpServers: {}, supervisor: { 'cache.ttlMs': 1000 } });

    expect(loaded.settings).toEqual({ 'cache.ttlMs': 1000 });
  });

  it('reports a bad setting value at its path', () => {
    const loaded = parse({ mcpServers: {}, supervisor: { health: { intervalMs: 'often' } } });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['supervisor.health.intervalMs']);
    expect(loaded.settings).toEqual({});
  });

  it('warns about an unknown setting', () => {
    const loaded = parse({ mcpServers: {}, supervisor: { health: { everyMs: 5 } } });

    expect(loaded.problems).toEqual([
      {
        severity: 'warning',
        path: 'supervisor.health.everyMs',
        message: 'unknown setting "health.everyMs"; ignored',
      },
    ]);
  });

  it('checks related settings even when another setting is refused', () => {
    const block = { 'health.intervalMs': -1, backoff: { baseMs: 9000, capMs: 100 } };
    const loaded = parse({ mcpServers: {}, supervisor: block });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual([
      'supervisor.health.intervalMs',
      'supervisor.backoff.baseMs',
    ]);
  });

  it('passes users through', () => {
    const users = [{ name: 'ops', token: 'x' }];
    const loaded = parse({ mcpServers: {}, supervisor: { users } });

    expect(loaded.users).toEqual(users);
    expect(loaded.problems).toEqual([]);
  });

  it('refuses users that are not an array', () => {
    const loaded = parse({ mcpServers: {}, supervisor: { users: { ops: 'x' } } });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['supervisor.users']);
  });

  it('refuses a supervisor block that is not an object', () => {
    const loaded = parse({ mcpServers: {}, supervisor: 5 });

    expect(errors(loaded.problems).map((p) => p.path)).toEqual(['supervisor']);
  });
});

describe('loadConfigFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-supervisor-config-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and records its path', async () => {
    const file = path.join(dir, 'ok.json');
    await writeFile(file, '{"mcpServers": {"a": {"command": "x"}}}');

    const loaded = await loadConfigFile(file, { env: {} });

    expect(loaded.path).toBe(file);
    expect(loaded.servers.map((s) => s.name)).toEqual(['a']);
  });

  it('reports a missing file as an error naming the path', async () => {
    const file = path.join(dir, 'missing.json');
    const loaded = await loadConfigFile(file);

    expect(loaded.servers).toEqual([]);
    expect(errors(loaded.problems)).toEqual([
      { severity: 'error', path: '', message: expect.stringContaining(file) },
    ]);
  });

  it('reports an unreadable path (a directory) as an error naming it', async () => {
    const loaded = await loadConfigFile(dir);

    expect(errors(loaded.problems)[0]?.message).toContain(dir);
  });
});

describe('loadConfigOrThrow', () => {
  it('throws a ConfigError with code INVALID_CONFIG and every problem', async () => {
    const file = path.join(FIXTURES, 'broken.json');
    const error = await loadConfigOrThrow(file, { env: {} }).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ConfigError);
    expect(isSupervisorError(error)).toBe(true);
    expect((error as ConfigError).code).toBe('INVALID_CONFIG');
    expect(errors((error as ConfigError).problems)).toHaveLength(4);
  });

  it('returns a config that has only warnings', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-supervisor-config-'));
    const file = path.join(dir, 'warn.json');
    await writeFile(file, '{"mcpServers": {"a": {"command": "x", "autoApprove": []}}}');

    const loaded = await loadConfigOrThrow(file, { env: {} });
    await rm(dir, { recursive: true, force: true });

    expect(loaded.servers).toHaveLength(1);
    expect(loaded.problems).toHaveLength(1);
  });
});

describe('formatProblems', () => {
  it('prints one line per problem with severity, path and message', () => {
    const problems: ConfigProblem[] = [
      { severity: 'error', path: 'mcpServers.x.command', message: 'must not be empty' },
      { severity: 'warning', path: 'mcpServers.x.timeout', message: 'ignored' },
      { severity: 'error', path: '', message: 'the config is empty' },
    ];

    expect(formatProblems(problems).split('\n')).toEqual([
      'error  mcpServers.x.command: must not be empty',
      'warning  mcpServers.x.timeout: ignored',
      'error  the config is empty',
    ]);
  });

  it('tells errors from warnings', () => {
    expect(hasErrors([{ severity: 'warning', path: 'a', message: 'm' }])).toBe(false);
    expect(hasErrors([{ severity: 'error', path: 'a', message: 'm' }])).toBe(true);
  });

  it('lists every error of the broken fixture with its path', async () => {
    const loaded = await loadConfigFile(path.join(FIXTURES, 'broken.json'), { env: {} });

    expect(formatProblems(loaded.problems).split('\n')).toEqual([
      'error  supervisor.health.intervalMs: Too small: expected number to be >0',
      'error  mcpServers.mixed: mixes a stdio command with a remote url: keep one of them',
      'error  mcpServers.github.env.GITHUB_PERSONAL_ACCESS_TOKEN: variable ' +
        'MCP_SUPERVISOR_FIXTURE_UNSET_TOKEN is not set and has no default',
      'warning  mcpServers.memory.alwaysAllow: "alwaysAllow" belongs to other MCP clients ' +
        "and is ignored (tool approval is the client's business)",
      'error  mcpServers.memory: duplicate server name "memory"',
    ]);
  });
});

describe('durations', () => {
  it('refuses a timer duration past what a Node timer keeps, naming the key', () => {
    const { values, problems } = parseSettings({ 'health.timeoutMs': 3_000_000_000 });

    expect(values).toEqual({});
    expect(problems).toEqual([
      { key: 'health.timeoutMs', message: expect.stringContaining('at most 2147483647 ms') },
    ]);
  });

  it('keeps compared durations such as store.historyRetentionMs free of that bound', () => {
    expect(parseSettings({ 'store.historyRetentionMs': 90 * 86_400_000 }).problems).toEqual([]);
  });
});
