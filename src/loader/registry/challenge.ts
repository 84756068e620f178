import { SandboxError } from '../../errors.ts';

/** One `WWW-Authenticate` challenge: `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`. */
export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

function malformed(header: string, why: string): SandboxError {
  return new SandboxError('MALFORMED', `registry sent a malformed WWW-Authenticate challenge (${why}): ${JSON.stringify(header.slice(0, 200))}`, { data: { header } });
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header (RFC 7235 auth-params, quoted strings with
 * backslash escapes). A Bearer challenge must name its realm as an http(s) URL.
 */
export function parseChallenge(header: string): Challenge {
  let s = header.trim();
  const m = TOKEN.exec(s);
  if (!m) throw malformed(header, 'no auth scheme');
  const scheme = m[0].toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') {
    throw new SandboxError('UNAUTHORIZED', `registry asks for ${m[0]} authentication, which wasmbox does not support (Basic and Bearer only)`);
  }
  s = s.slice(m[0].length);
  const params: Record<string, string> = {};
  while (s.trim() !== '') {
    s = s.replace(/^[\s,]+/, '');
    if (s === '') break;
    const k = TOKEN.exec(s);
    if (!k) throw malformed(header, 'expected a parameter name');
    const key = k[0].toLowerCase();
    s = s.slice(k[0].length).replace(/^\s*/, '');
    if (s[0] !== '=') {
      // The next challenge (another scheme) begins: only the first one is used.
      break;
    }
    s = s.slice(1).replace(/^\s*/, '');
    let value = '';
    if (s[0] === '"') {
      let i = 1;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\') i++;
        value += s[i] ?? '';
      }
      if (i >= s.length) throw malformed(header, 'unterminated quoted string');
      s = s.slice(i + 1);
    } else {
      const v = TOKEN.exec(s);
      if (!v) throw malformed(header, `no value for ${key}`);
      value = v[0];
      s = s.slice(v[0].length);
    }
    params[key] = value;
    s = s.replace(/^\s*/, '');
    if (s !== '' && s[0] !== ',') throw malformed(header, `unexpected text after ${key}`);
  }
  if (scheme === 'bearer') {
    const realm = params.realm;
    if (!realm) throw malformed(header, 'Bearer challenge without a realm');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw malformed(header, `realm ${JSON.stringify(realm)} is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw malformed(header, `realm ${JSON.stringify(realm)} is not http(s)`);
  }
  return { scheme, params };
}

/** `repository:NAME:ACTIONS` scopes for the token server. */
export function repositoryScope(repository: string, actions: Array<'pull' | 'push'>): string {
  return `repository:${repository}:${actions.join(',')}`;
}
