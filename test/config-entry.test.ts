import path from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  parseServerEntry,
  safeServerName,
  type ConfigProblem,
  type ParseEntryOptions,
} from '../src/config/load.js';

const BASE = 'mcpServers.s';

function parse(raw: unknown, options: Partial<ParseEntryOptions> = {}) {
  return parseServerEntry('s', raw, { source: 'config', basePath: BASE, env: {}, ...options });
}

function errors(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.filter((p) => p.severity === 'error');
}

function warnings(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.filter((p) => p.severity === 'warning');
}

describe('parseServerEntry: transports', () => {
  it('infers stdio from a command and fills the defaults', () => {
    const { entry, problems } = parse({ command: 'npx', args: ['server'] });

    expect(problems).toEqual([]);
    expect(entry).toEqual({
      name: 's',
      transport: 'stdio',
      fallbackToSse: false,
      command: 'npx',
      args: ['server'],
      env: {},
      headers: {},
      enabled: true,
      tags: [],
      settings: {},
      tools: {},
      secrets: [],
      source: 'config',
    });
  });

  it('infers Streamable HTTP with an SSE fallback from a url without a type', () => {
    const { entry } = parse({ url: 'https://example.com/mcp' });

    expect(entry?.transport).toBe('http');
    expect(entry?.fallbackToSse).toBe(true);
    expect(entry?.url).toBe('https://example.com/mcp');
  });

  it('does not fall back to SSE when the type says http', () => {
    const { entry } = parse({ type: 'http', url: 'https://example.com/mcp' });

    expect(entry?.transport).toBe('http');
    expect(entry?.fallbackToSse).toBe(false);
  });

  it.each([
    ['stdio', 'stdio'],
    ['STDIO', 'stdio'],
    ['http', 'http'],
    ['HTTP', 'http'],
    ['streamable-http', 'http'],
    ['streamableHttp', 'http'],
    ['StreamableHTTP', 'http'],
    ['streamable_http', 'http'],
    ['sse', 'sse'],
    ['SSE', 'sse'],
  ])('reads the transport spelling %s as %s', (spelling, kind) => {
    const raw = kind === 'stdio' ? { command: 'x' } : { url: 'https://example.com/mcp' };
    const { entry, problems } = parse({ ...raw, type: spelling });

    expect(errors(problems)).toEqual([]);
    expect(entry?.transport).toBe(kind);
  });

  it('accepts the transport key as well as type', () => {
    const { entry } = parse({ transport: 'sse', url: 'https://example.com/sse' });

    expect(entry?.transport).toBe('sse');
    expect(entry?.fallbackToSse).toBe(false);
  });

  it('refuses an unknown transport at its path', () => {
    const { entry, problems } = parse({ type: 'websocket', url: 'wss://example.com' });

    expect(entry).toBeUndefined();
    expect(errors(problems)).toContainEqual({
      severity: 'error',
      path: `${BASE}.type`,
      message: expect.stringContaining('websocket'),
    });
  });

  it('refuses a type and a transport that disagree', () => {
    const { problems } = parse({ type: 'sse', transport: 'http', url: 'https://example.com' });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.transport`]);
  });

  it('refuses an entry that mixes a command and a url', () => {
    const { entry, problems } = parse({ command: 'node', url: 'https://example.com/mcp' });

    expect(entry).toBeUndefined();
    expect(errors(problems)).toEqual([
      { severity: 'error', path: BASE, message: expect.stringContaining('mixes') },
    ]);
  });

  it('refuses an entry with neither a command nor a url', () => {
    const { entry, problems } = parse({ args: ['x'] });

    expect(entry).toBeUndefined();
    expect(errors(problems)).toEqual([
      { severity: 'error', path: BASE, message: expect.stringContaining('needs a command') },
    ]);
  });

  it('refuses a stdio type given a url', () => {
    const { problems } = parse({ type: 'stdio', url: 'https://example.com/mcp' });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.url`]);
  });

  it('refuses an sse type given a command', () => {
    const { problems } = parse({ type: 'sse', command: 'node' });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.command`]);
  });

  it('refuses a url that does not parse, without echoing it', () => {
    const { problems } = parse({ url: 'not a url with s3cret-value' });

    expect(errors(problems)).toEqual([
      { severity: 'error', path: `${BASE}.url`, message: 'is not a valid URL' },
    ]);
  });

  it('refuses a url with a scheme other than http or https', () => {
    const { problems } = parse({ url: 'ftp://example.com/mcp' });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.url`]);
  });

  it('reads Gemini CLI httpUrl as Streamable HTTP without the SSE fallback', () => {
    const { entry } = parse({ httpUrl: 'https://example.com/mcp' });

    expect(entry?.transport).toBe('http');
    expect(entry?.fallbackToSse).toBe(false);
  });
});

describe('parseServerEntry: fields', () => {
  it.each([
    [{ disabled: true }, false],
    [{ enabled: false }, false],
    [{ enabled: true }, true],
    [{ disabled: false }, true],
    [{ disabled: true, enabled: true }, false],
  ])('reads %j as enabled %s', (flags, enabled) => {
    expect(parse({ command: 'x', ...flags }).entry?.enabled).toBe(enabled);
  });

  it('keeps tags once each, in order', () => {
    expect(parse({ command: 'x', tags: ['prod', 'fs', 'prod'] }).entry?.tags).toEqual([
      'prod',
      'fs',
    ]);
  });

  it('reports a field of the wrong type at its path', () => {
    const { entry, problems } = parse({ command: 'x', args: ['ok', 7], tags: 'prod' });

    expect(entry).toBeUndefined();
    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.args[1]`, `${BASE}.tags`]);
  });

  it('reports a non-string env value at its path without its value', () => {
    const { problems } = parse({ command: 'x', env: { PORT: 8080 } });

    expect(errors(problems)).toHaveLength(1);
    expect(errors(problems)[0]?.path).toBe(`${BASE}.env.PORT`);
    expect(errors(problems)[0]?.message).not.toContain('8080');
  });

  it('refuses an entry that is not an object', () => {
    const { problems } = parse(['npx']);

    expect(errors(problems)).toEqual([
      { severity: 'error', path: BASE, message: 'a server entry must be an object' },
    ]);
  });

  it('warns about an unknown key by name and still accepts the entry', () => {
    const { entry, problems } = parse({ command: 'x', colour: 'blue' });

    expect(entry).toBeDefined();
    expect(problems).toEqual([
      { severity: 'warning', path: `${BASE}.colour`, message: 'unknown key "colour"; ignored' },
    ]);
  });

  it.each(['alwaysAllow', 'autoApprove', 'disabledTools', 'timeout'])(
    'warns about the other client key %s by name and ignores it',
    (key) => {
      const { entry, problems } = parse({ command: 'x', [key]: key === 'timeout' ? 60 : [] });

      expect(entry).toBeDefined();
      expect(entry).not.toHaveProperty(key);
      expect(problems).toEqual([
        {
          severity: 'warning',
          path: `${BASE}.${key}`,
          message: expect.stringContaining(`"${key}" belongs to other MCP clients`),
        },
      ]);
    },
  );

  it('says why timeout is not guessed at', () => {
    const { problems } = parse({ command: 'x', timeout: 30 });

    expect(problems[0]?.message).toMatch(/seconds .* milliseconds/);
  });

  it('warns that headers are ignored on a stdio entry', () => {
    const { entry, problems } = parse({ command: 'x', headers: { A: 'b' } });

    expect(entry?.headers).toEqual({});
    expect(warnings(problems).map((p) => p.path)).toEqual([`${BASE}.headers`]);
  });

  it('warns that args are ignored on a remote entry', () => {
    const { entry, problems } = parse({ url: 'https://example.com', args: ['--x'] });

    expect(entry?.args).toEqual([]);
    expect(warnings(problems).map((p) => p.path)).toEqual([`${BASE}.args`]);
  });

  it('resolves a relative cwd against the base directory', () => {
    const baseDir = path.join(path.sep, 'srv', 'configs');
    const { entry } = parse({ command: 'x', cwd: 'servers/fs' }, { baseDir });

    expect(entry?.cwd).toBe(path.join(baseDir, 'servers', 'fs'));
  });

  it('sets the source from the options', () => {
    expect(parse({ command: 'x' }, { source: 'api' }).entry?.source).toBe('api');
  });

  it('reports paths relative to the entry when no base path is given', () => {
    const { problems } = parseServerEntry('s', { command: 5 }, { source: 'api', env: {} });

    expect(errors(problems).map((p) => p.path)).toEqual(['command']);
  });
});

describe('parseServerEntry: restart, supervisor and tools', () => {
  it('maps a restart policy string to restart.policy', () => {
    expect(parse({ command: 'x', restart: 'transient' }).entry?.settings).toEqual({
      'restart.policy': 'transient',
    });
  });

  it('refuses an unknown restart policy at the restart path', () => {
    const { problems } = parse({ command: 'x', restart: 'sometimes' });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.restart`]);
  });

  it('maps a restart object to restart.* settings', () => {
    const { entry } = parse({ command: 'x', restart: { policy: 'transient', maxRestarts: 3 } });

    expect(entry?.settings).toEqual({ 'restart.policy': 'transient', 'restart.maxRestarts': 3 });
  });

  it('reports a bad restart setting at its path', () => {
    const { problems } = parse({ command: 'x', restart: { maxRestarts: -1 } });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.restart.maxRestarts`]);
  });

  it('reads the per-server supervisor block in nested and flat form', () => {
    const block = { health: { intervalMs: 1000 }, 'call.timeoutMs': 2000 };
    const { entry } = parse({ command: 'x', supervisor: block });

    expect(entry?.settings).toEqual({ 'health.intervalMs': 1000, 'call.timeoutMs': 2000 });
  });

  it('layers restart over the supervisor block', () => {
    const raw = { command: 'x', supervisor: { restart: { policy: 'temporary' } } };
    const { entry } = parse({ ...raw, restart: 'transient' });

    expect(entry?.settings['restart.policy']).toBe('transient');
  });

  it('reports a bad per-server setting at its full path', () => {
    const { problems } = parse({ command: 'x', supervisor: { health: { intervalMs: 0 } } });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.supervisor.health.intervalMs`]);
  });

  it('warns about an unknown per-server setting', () => {
    const { entry, problems } = parse({ command: 'x', supervisor: { 'health.everyMs': 1 } });

    expect(entry).toBeDefined();
    expect(warnings(problems).map((p) => p.path)).toEqual([`${BASE}.supervisor.health.everyMs`]);
  });

  it('reads per-tool options', () => {
    const tools = { search: { timeoutMs: 5000, cacheable: true, ttlMs: 60_000 }, x: {} };

    expect(parse({ command: 'x', tools }).entry?.tools).toEqual({
      search: { timeoutMs: 5000, cacheable: true, ttlMs: 60_000 },
      x: {},
    });
  });

  it('reports a bad tool option at its path', () => {
    const { problems } = parse({ command: 'x', tools: { search: { timeoutMs: 'soon' } } });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.tools.search.timeoutMs`]);
  });

  it('warns about an unknown tool option', () => {
    const { problems } = parse({ command: 'x', tools: { search: { cache: true } } });

    expect(warnings(problems).map((p) => p.path)).toEqual([`${BASE}.tools.search.cache`]);
  });
});

describe('parseServerEntry: variables', () => {
  const env = { HOME_DIR: '/home/me', TOKEN: 'ghp_secret123' };

  it('resolves ${VAR} from the environment in command, args, cwd', () => {
    const raw = {
      command: '${HOME_DIR}/bin/srv',
      args: ['--root=${HOME_DIR}'],
      cwd: '${HOME_DIR}',
    };
    const { entry } = parse(raw, { env });

    expect(entry?.command).toBe('/home/me/bin/srv');
    expect(entry?.args).toEqual(['--root=/home/me']);
    expect(entry?.cwd).toBe('/home/me');
  });

  it('resolves ${VAR} in url and header values', () => {
    const raw = { url: 'https://${HOST}/mcp', headers: { Authorization: 'Bearer ${TOKEN}' } };
    const { entry } = parse(raw, { env: { ...env, HOST: 'api.example.com' } });

    expect(entry?.url).toBe('https://api.example.com/mcp');
    expect(entry?.headers).toEqual({ Authorization: 'Bearer ghp_secret123' });
  });

  it('resolves env values from the environment, passing a same-named variable through', () => {
    const { entry } = parse({ command: 'x', env: { TOKEN: '${TOKEN}' } }, { env });

    expect(entry?.env).toEqual({ TOKEN: 'ghp_secret123' });
  });

  it('resolves args from the entry env before the environment', () => {
    const raw = { command: 'x', args: ['${AUTH_HEADER}'], env: { AUTH_HEADER: 'Bearer abc' } };
    const { entry } = parse(raw, { env: { AUTH_HEADER: 'from-outside' } });

    expect(entry?.args).toEqual(['Bearer abc']);
  });

  it('uses the default of ${VAR:-default} when the variable is unset', () => {
    const { entry } = parse({ command: 'x', args: ['${PORT:-8080}'] }, { env: {} });

    expect(entry?.args).toEqual(['8080']);
  });

  it('prefers a set variable over its default', () => {
    const { entry } = parse({ command: 'x', args: ['${PORT:-8080}'] }, { env: { PORT: '9' } });

    expect(entry?.args).toEqual(['9']);
  });

  it('accepts the VS Code ${env:VAR} spelling', () => {
    const { entry } = parse({ command: 'x', args: ['${env:HOME_DIR}'] }, { env });

    expect(entry?.args).toEqual(['/home/me']);
  });

  it('reports an unset variable without a default at its path', () => {
    const raw = { command: 'x', args: ['a', 'b', '${GH_TOKEN}'] };
    const { entry, problems } = parse(raw, { env: {} });

    expect(entry).toBeUndefined();
    expect(errors(problems)).toEqual([
      { severity: 'error', path: `${BASE}.args[2]`, message: expect.stringContaining('GH_TOKEN') },
    ]);
  });

  it('reports an unset variable in an env value at the env path', () => {
    const { problems } = parse({ command: 'x', env: { TOKEN: '${NOPE}' } }, { env: {} });

    expect(errors(problems).map((p) => p.path)).toEqual([`${BASE}.env.TOKEN`]);
  });

  it('reports ${input:...} as needing a person', () => {
    const { problems } = parse({ command: 'x', env: { TOKEN: '${input:gh_token}' } });

    expect(errors(problems)).toEqual([
      {
        severity: 'error',
        path: `${BASE}.env.TOKEN`,
        message: expect.stringContaining('asks a person'),
      },
    ]);
  });

  it('reports other variable forms as unsupported', () => {
    const { problems } = parse({ command: 'x', args: ['${command:pick}'] });

    expect(errors(problems)[0]?.message).toContain('unsupported variable form');
  });
});

describe('parseServerEntry: secrets', () => {
  it('collects resolved variables and env values as secrets', () => {
    const raw = { command: 'x', args: ['--user=${USER_ID}'], env: { KEY: 'plain-key-value' } };
    const { entry } = parse(raw, { env: { USER_ID: 'u-778899' } });

    expect(entry?.secrets).toEqual(expect.arrayContaining(['u-778899', 'plain-key-value']));
  });

  it('collects header values and the bare bearer credential', () => {
    const raw = { url: 'https://example.com', headers: { Authorization: 'Bearer tok-abcdef' } };

    expect(parse(raw).entry?.secrets).toEqual(
      expect.arrayContaining(['Bearer tok-abcdef', 'tok-abcdef']),
    );
  });

  it('collects URL user-info and query values', () => {
    const { entry } = parse({ url: 'https://alice:pa%24%24word@example.com/mcp?key=k-12345&x=1' });

    expect(entry?.secrets).toEqual(
      expect.arrayContaining(['alice', 'pa%24%24word', 'pa$$word', 'k-12345']),
    );
  });

  it('collects the values of secret-looking flags', () => {
    const args = ['--api-key=ak-555555', '--token', 'tk-666666', '--verbose'];

    expect(parse({ command: 'x', args }).entry?.secrets).toEqual(
      expect.arrayContaining(['ak-555555', 'tk-666666']),
    );
  });

  it('never puts an env or header value in a problem message', () => {
    const raw = {
      command: 'x',
      url: 'https://example.com',
      env: { TOKEN: 'sek-ret-111', BAD: 3 },
      headers: { Authorization: 'Bearer sek-ret-222', Bad: false },
      args: ['${UNSET_ONE}'],
    };
    const { problems } = parse(raw, { env: { UNSET_ONE: undefined } });
    const text = JSON.stringify(problems);

    expect(errors(problems).length).toBeGreaterThan(0);
    expect(text).not.toContain('sek-ret');
  });
});

describe('safeServerName', () => {
  it('keeps a safe name as it is', () => {
    expect(safeServerName('github_v2.prod-1')).toBe('github_v2.prod-1');
  });

  it('replaces unsafe characters with dashes', () => {
    expect(safeServerName('@org/my server')).toBe('-org-my-server');
  });

  it('trims a long name to 64 characters', () => {
    expect(safeServerName(`${'a'.repeat(70)} b`)).toBe('a'.repeat(64));
  });
});

describe('parseServerEntry: names', () => {
  it('accepts an unsafe name under its derived name with a warning naming both', () => {
    const { entry, problems } = parseServerEntry(
      'acme/search tool',
      { command: 'x' },
      { source: 'config', basePath: 'mcpServers["acme/search tool"]' },
    );

    expect(entry?.name).toBe('acme-search-tool');
    expect(entry?.originalName).toBe('acme/search tool');
    expect(problems).toEqual([
      {
        severity: 'warning',
        path: 'mcpServers["acme/search tool"]',
        message: expect.stringMatching(/"acme\/search tool".*"acme-search-tool"/),
      },
    ]);
  });

  it('refuses an empty name', () => {
    const { entry, problems } = parseServerEntry('', { command: 'x' }, { source: 'api' });

    expect(entry).toBeUndefined();
    expect(errors(problems)).toHaveLength(1);
  });
});

describe('secrets from variables', () => {
  it('masks values the environment supplied, not defaults written in the file', () => {
    const { entry } = parseServerEntry(
      'remote',
      { url: 'http://127.0.0.1:${PORT:-3001}/mcp?key=${KEY}' },
      { env: { KEY: 'from-the-environment' }, source: 'config' },
    );

    expect(entry?.url).toBe('http://127.0.0.1:3001/mcp?key=from-the-environment');
    expect(entry?.secrets).toContain('from-the-environment');
    expect(entry?.secrets).not.toContain('3001');
  });
});
