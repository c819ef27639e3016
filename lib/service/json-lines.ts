/**
 * A strict JSON parser (RFC 8259) that keeps where every value and key
 * starts, so a config error can name its line. JSON.parse gives no
 * positions; this gives a tree of nodes, each with its 1-based line and
 * column, and syntax errors with line:column and a hint for the usual
 * slips (comments, trailing commas, single quotes). A key given twice in one
 * object is an error too: a config must not say two things.
 */

/** Where a node or key starts: 1-based line and column (UTF-16 units). */
export interface Position {
  readonly line: number;
  readonly column: number;
}

export interface JsonObject extends Position {
  readonly kind: 'object';
  readonly members: readonly JsonMember[];
}

export interface JsonMember {
  readonly key: string;
  /** Where the key's opening quote is. */
  readonly at: Position;
  readonly value: JsonNode;
}

export interface JsonArray extends Position {
  readonly kind: 'array';
  readonly items: readonly JsonNode[];
}

export interface JsonString extends Position {
  readonly kind: 'string';
  readonly value: string;
}

export interface JsonNumber extends Position {
  readonly kind: 'number';
  readonly value: number;
}

export interface JsonBoolean extends Position {
  readonly kind: 'boolean';
  readonly value: boolean;
}

export interface JsonNull extends Position {
  readonly kind: 'null';
  readonly value: null;
}

export type JsonNode = JsonObject | JsonArray | JsonString | JsonNumber | JsonBoolean | JsonNull;

/** Malformed JSON, at `line`:`column`. */
export class JsonSyntaxError extends SyntaxError {
  override name = 'JsonSyntaxError';
  constructor(
    readonly detail: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${line}:${column}: ${detail}`);
  }
}

/** Deeper nesting than this is refused rather than risking the stack. */
const MAX_DEPTH = 256;

const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Parse `text` (one JSON value, whitespace around it allowed, a leading BOM skipped). */
export function parseJson(text: string): JsonNode {
  return new Parser(text).document();
}

/** The node as a plain JavaScript value, as JSON.parse would give it. */
export function toPlain(node: JsonNode): unknown {
  switch (node.kind) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const member of node.members) out[member.key] = toPlain(member.value);
      return out;
    }
    case 'array':
      return node.items.map(toPlain);
    default:
      return node.value;
  }
}

class Parser {
  private pos = 0;
  private line = 1;
  /** Index of the first character of the current line. */
  private lineStart = 0;
  private depth = 0;

  constructor(private readonly text: string) {
    if (text.charCodeAt(0) === 0xfeff) {
      this.pos = 1;
      this.lineStart = 1;
    }
  }

  document(): JsonNode {
    this.skipSpace();
    if (this.pos >= this.text.length) this.fail('the file is empty: expected a JSON value');
    const node = this.value();
    this.skipSpace();
    if (this.pos < this.text.length) this.fail(`unexpected ${this.shown()} after the end of the JSON value`);
    return node;
  }

  private here(): Position {
    return { line: this.line, column: this.pos - this.lineStart + 1 };
  }

  private fail(detail: string, at: Position = this.here()): never {
    throw new JsonSyntaxError(detail, at.line, at.column);
  }

  /** The character at the cursor, for messages. */
  private shown(): string {
    if (this.pos >= this.text.length) return 'end of file';
    const c = this.text[this.pos]!;
    return c < ' ' ? `character U+${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}` : `'${c}'`;
  }

  private skipSpace(): void {
    const text = this.text;
    for (;;) {
      const c = text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09) this.pos++;
      else if (c === 0x0a || c === 0x0d) {
        this.pos++;
        // CR LF is one line break; a lone CR counts as one too.
        if (c === 0x0d && text.charCodeAt(this.pos) === 0x0a) this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else if (c === 0x2f && (text[this.pos + 1] === '/' || text[this.pos + 1] === '*')) {
        this.fail('comments are not allowed in JSON');
      } else return;
    }
  }

  private value(): JsonNode {
    const at = this.here();
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object(at);
      case '[':
        return this.array(at);
      case '"':
        return { kind: 'string', value: this.string(), ...at };
      case "'":
        return this.fail('strings take double quotes in JSON');
      case 't':
      case 'f':
      case 'n':
        return this.literal(at);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return { kind: 'number', value: this.number(), ...at };
        // A bare word (yes, True, undefined…): said as such, not as its first letter.
        if (c !== undefined && /[A-Za-z_]/.test(c)) return this.literal(at);
        return this.fail(c === undefined ? 'unexpected end of file: expected a value' : `expected a value, got ${this.shown()}`);
    }
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
  }

  private object(at: Position): JsonObject {
    this.enter();
    this.pos++;
    const members: JsonMember[] = [];
    const seen = new Map<string, Position>();
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      this.depth--;
      return { kind: 'object', members, ...at };
    }
    for (;;) {
      this.skipSpace();
      const keyAt = this.here();
      if (this.text[this.pos] !== '"') {
        if (this.text[this.pos] === '}' && members.length > 0) this.fail("a trailing comma before '}' is not allowed in JSON");
        this.fail(this.pos >= this.text.length ? 'unexpected end of file: expected a key in double quotes' : `expected a key in double quotes, got ${this.shown()}`);
      }
      const key = this.string();
      const first = seen.get(key);
      if (first !== undefined) this.fail(`duplicate key ${JSON.stringify(key)} (first given on line ${first.line})`, keyAt);
      seen.set(key, keyAt);
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after the key ${JSON.stringify(key)}, got ${this.shown()}`);
      this.pos++;
      this.skipSpace();
      members.push({ key, at: keyAt, value: this.value() });
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ',') continue;
      if (c === '}') break;
      this.pos--;
      this.fail(`expected ',' or '}' after the value of ${JSON.stringify(key)}, got ${this.shown()}`);
    }
    this.depth--;
    return { kind: 'object', members, ...at };
  }

  private array(at: Position): JsonArray {
    this.enter();
    this.pos++;
    const items: JsonNode[] = [];
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      this.depth--;
      return { kind: 'array', items, ...at };
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === ']' && items.length > 0) this.fail("a trailing comma before ']' is not allowed in JSON");
      items.push(this.value());
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ',') continue;
      if (c === ']') break;
      this.pos--;
      this.fail(`expected ',' or ']' after an array item, got ${this.shown()}`);
    }
    this.depth--;
    return { kind: 'array', items, ...at };
  }

  /** A string at the cursor (on its opening quote); the cursor ends after the closing quote. */
  private string(): string {
    const text = this.text;
    this.pos++;
    let out = '';
    let runStart = this.pos;
    for (;;) {
      const c = text.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('unexpected end of file inside a string');
      if (c === 0x22) {
        out += text.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail(c === 0x0a || c === 0x0d ? 'a string may not span lines (write \\n for a line break)' : `${this.shown()} must be escaped in a string`);
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += text.slice(runStart, this.pos);
      const escape = text[this.pos + 1];
      if (escape === 'u') {
        const hex = text.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('\\u must be followed by four hex digits');
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else if (escape !== undefined && ESCAPES[escape] !== undefined) {
        out += ESCAPES[escape];
        this.pos += 2;
      } else {
        this.fail(escape === undefined ? 'unexpected end of file inside a string' : `unknown escape \\${escape}`);
      }
      runStart = this.pos;
    }
  }

  private number(): number {
    const match = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    match.lastIndex = this.pos;
    const found = match.exec(this.text);
    if (found === null) this.fail(`malformed number at ${this.shown()}`);
    const end = this.pos + found[0].length;
    const next = this.text[end];
    if (next !== undefined && /[0-9A-Za-z.+-]/.test(next)) {
      this.pos = end;
      this.fail(`malformed number: unexpected ${this.shown()}`);
    }
    this.pos = end;
    return Number(found[0]);
  }

  private literal(at: Position): JsonBoolean | JsonNull {
    for (const [word, node] of [
      ['true', { kind: 'boolean', value: true }],
      ['false', { kind: 'boolean', value: false }],
      ['null', { kind: 'null', value: null }],
    ] as const) {
      if (this.text.startsWith(word, this.pos) && !/[0-9A-Za-z_]/.test(this.text[this.pos + word.length] ?? '')) {
        this.pos += word.length;
        return { ...node, ...at };
      }
    }
    const word = /[A-Za-z_][0-9A-Za-z_]*/y;
    word.lastIndex = this.pos;
    return this.fail(`unexpected word ${JSON.stringify(word.exec(this.text)?.[0] ?? this.text[this.pos])}: expected a value (strings take double quotes)`, at);
  }
}
