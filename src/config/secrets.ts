/**
 * Which values of an entry are secrets beyond env and header values: URL credentials, URL
 * query values, and the values of secret-looking command-line flags.
 */

const SECRET_WORD = /token|secret|passw(or)?d|api[-_]?key|auth|credential/i;
const FLAG_WITH_VALUE = /^--?([A-Za-z0-9][\w.-]*)=(.+)$/s;
const FLAG = /^--?([A-Za-z0-9][\w.-]*)$/;
const HEADER_ARG = /^([A-Za-z0-9-]+)\s*:\s*(.+)$/s;
const BEARER = /^(bearer|basic|token)\s+(.+)$/i;

/** The user name, password and query values of a URL, decoded and as written. */
export function urlSecrets(url: URL): string[] {
  const out: string[] = [];

  for (const part of [url.username, url.password]) {
    if (part) out.push(part, safeDecode(part));
  }

  for (const value of url.searchParams.values()) {
    if (value) out.push(value);
  }

  for (const pair of url.search.slice(1).split('&')) {
    const raw = pair.slice(pair.indexOf('=') + 1);
    if (pair.includes('=') && raw) out.push(raw);
  }

  return unique(out);
}

/**
 * Values of flags whose names look secret (`--api-key=...`, `--token ...`) and of header-style
 * arguments (`Authorization: Bearer ...`), including the bare credential after a scheme word.
 */
export function argSecrets(args: readonly string[]): string[] {
  const out: string[] = [];

  args.forEach((arg, i) => {
    const withValue = FLAG_WITH_VALUE.exec(arg);
    if (withValue && SECRET_WORD.test(withValue[1])) out.push(...credential(withValue[2]));

    const flag = FLAG.exec(arg);
    const next = args[i + 1];
    if (flag && SECRET_WORD.test(flag[1]) && next !== undefined && !next.startsWith('-')) {
      out.push(...credential(next));
    }

    const header = HEADER_ARG.exec(arg);
    if (header && SECRET_WORD.test(header[1])) out.push(...credential(header[2]));
  });

  return unique(out);
}

/** A credential and, for `Bearer xyz`, the bare `xyz` too. */
export function credential(value: string): string[] {
  const trimmed = value.trim();
  const scheme = BEARER.exec(trimmed);

  return scheme ? [trimmed, scheme[2].trim()] : [trimmed];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values.filter((v) => v !== ''))];
}
