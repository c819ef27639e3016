/**
 * The Sec-WebSocket-Extensions grammar (RFC 6455 §9.1): a comma-separated
 * list of extensions, each a token with `;`-separated parameters, each
 * parameter a token with an optional value, a token or a quoted string whose
 * unescaped text is itself a token. Several header fields are one list.
 */
import { isToken } from './http1.js';

/** One extension as offered or accepted: its name and parameters in order (`true` for a parameter without a value). */
export interface Extension {
  name: string;
  params: Array<[name: string, value: string | true]>;
}

/** The header does not follow the grammar; the message says where. */
export class ExtensionHeaderError extends Error {
  override name = 'ExtensionHeaderError';
}

/** Parse a Sec-WebSocket-Extensions value (fields already joined with ", "). Throws ExtensionHeaderError. */
export function parseExtensions(value: string): Extension[] {
  const reader = new Reader(value);
  const extensions: Extension[] = [];
  for (;;) {
    reader.skipSpace();
    // Empty list elements are allowed by the #rule (RFC 9110 §5.6.1): ", , foo".
    if (reader.peek() === ',') {
      reader.pos++;
      continue;
    }
    if (reader.atEnd()) break;
    const name = reader.token('an extension name');
    const params: Extension['params'] = [];
    reader.skipSpace();
    while (reader.peek() === ';') {
      reader.pos++;
      reader.skipSpace();
      const param = reader.token(`a parameter name of ${name}`);
      reader.skipSpace();
      let paramValue: string | true = true;
      if (reader.peek() === '=') {
        reader.pos++;
        reader.skipSpace();
        paramValue = reader.peek() === '"' ? reader.quotedToken(param) : reader.token(`a value for ${param}`);
        reader.skipSpace();
      }
      params.push([param, paramValue]);
    }
    extensions.push({ name, params });
    if (reader.atEnd()) break;
    if (reader.peek() !== ',') throw new ExtensionHeaderError(`Sec-WebSocket-Extensions: expected ',' or ';' at offset ${reader.pos}, got ${JSON.stringify(reader.peek())}`);
    reader.pos++;
  }
  return extensions;
}

/** The header value for `extensions`, e.g. `permessage-deflate; client_max_window_bits=10`. */
export function formatExtensions(extensions: readonly Extension[]): string {
  return extensions.map(({ name, params }) => [name, ...params.map(([key, value]) => (value === true ? key : `${key}=${value}`))].join('; ')).join(', ');
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

class Reader {
  pos = 0;
  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos] ?? '';
  }

  skipSpace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  token(what: string): string {
    const start = this.pos;
    while (!this.atEnd() && TCHAR.test(this.text[this.pos]!)) this.pos++;
    if (this.pos === start) {
      throw new ExtensionHeaderError(`Sec-WebSocket-Extensions: expected ${what} at offset ${start}, got ${this.atEnd() ? 'the end' : JSON.stringify(this.peek())}`);
    }
    return this.text.slice(start, this.pos);
  }

  /** A quoted string whose content, unescaped, must be a token (§9.1). */
  quotedToken(param: string): string {
    const start = this.pos;
    this.pos++;
    let content = '';
    for (;;) {
      if (this.atEnd()) throw new ExtensionHeaderError(`Sec-WebSocket-Extensions: unterminated quoted value of ${param} at offset ${start}`);
      const c = this.text[this.pos++]!;
      if (c === '"') break;
      if (c === '\\') {
        if (this.atEnd()) throw new ExtensionHeaderError(`Sec-WebSocket-Extensions: unterminated quoted value of ${param} at offset ${start}`);
        content += this.text[this.pos++]!;
      } else {
        content += c;
      }
    }
    if (!isToken(content)) throw new ExtensionHeaderError(`Sec-WebSocket-Extensions: the quoted value of ${param} is not a token: ${JSON.stringify(content)}`);
    return content;
  }
}
