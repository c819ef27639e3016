/**
 * lib/service/json-lines.ts: the same values as JSON.parse, the line and
 * column of every value and key, and syntax errors at the right line:column
 * with a hint for the usual slips.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonSyntaxError, parseJson, toPlain, type JsonNode, type JsonObject } from '../../lib/service/json-lines.js';

function syntaxError(text: string): JsonSyntaxError {
  try {
    parseJson(text);
  } catch (error) {
    assert.ok(error instanceof JsonSyntaxError, `expected a JsonSyntaxError, got ${String(error)}`);
    return error;
  }
  assert.fail(`parsed without error: ${JSON.stringify(text)}`);
}

function member(node: JsonNode, key: string): JsonNode {
  assert.equal(node.kind, 'object');
  const found = (node as JsonObject).members.find((m) => m.key === key);
  assert.ok(found, `key ${key}`);
  return found.value;
}

test('values: the same as JSON.parse, for every kind of value and escape', () => {
  const samples = [
    '{}',
    '[]',
    '0',
    '-0.5e+3',
    '1E2',
    '"plain"',
    String.raw`"\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`,
    'true',
    'false',
    'null',
    '{"a": [1, 2, {"b": null}], "c": "d", "e": {"f": [true, false]}}',
    '\ufeff {"bom": 1}',
    ' \t\r\n[ 1 ,\r\n 2 ]\n',
    '"héllo ✓ 😀"',
  ];
  for (const text of samples) assert.deepEqual(toPlain(parseJson(text)), JSON.parse(text.replace(/^\ufeff/, '')), text);
});

test('positions: the line and column of every value and key (LF, CRLF and lone CR line breaks)', () => {
  const text = '{\n  "listen": {\r\n    "port": 8080\r  },\n  "routes": [\n    { "path": "/chat" },\n\n    "x"\n  ]\n}';
  const root = parseJson(text) as JsonObject;
  assert.deepEqual([root.line, root.column], [1, 1]);
  assert.deepEqual(root.members.map((m) => [m.key, m.at.line, m.at.column]), [
    ['listen', 2, 3],
    ['routes', 5, 3],
  ]);
  const port = member(member(root, 'listen'), 'port');
  assert.deepEqual([port.kind, port.line, port.column], ['number', 3, 13]);
  const routes = member(root, 'routes');
  assert.equal(routes.kind, 'array');
  if (routes.kind !== 'array') return;
  assert.deepEqual([routes.items[0]!.line, routes.items[0]!.column], [6, 5]);
  assert.deepEqual([member(routes.items[0]!, 'path').line, member(routes.items[0]!, 'path').column], [6, 15]);
  assert.deepEqual([routes.items[1]!.line, routes.items[1]!.column], [8, 5]);
});

test('syntax errors: line:column and what was expected', () => {
  const cases: Array<[string, number, number, RegExp]> = [
    ['', 1, 1, /empty/],
    ['   \n  ', 2, 3, /empty/],
    ['{\n  "a": 1,\n}', 3, 1, /trailing comma before '}'/],
    ['[1, 2,]', 1, 7, /trailing comma before '\]'/],
    ['{\n  // note\n  "a": 1\n}', 2, 3, /comments are not allowed/],
    ['{ /* x */ }', 1, 3, /comments are not allowed/],
    ["{ 'a': 1 }", 1, 3, /expected a key in double quotes/],
    ["[ 'a' ]", 1, 3, /double quotes/],
    ['{ "a" 1 }', 1, 7, /expected ':' after the key "a"/],
    ['{ "a": 1 "b": 2 }', 1, 10, /expected ',' or '}' after the value of "a"/],
    ['[1 2]', 1, 4, /expected ',' or '\]'/],
    ['{ "a": tru }', 1, 8, /unexpected word "tru"/],
    ['{ "a": yes }', 1, 8, /unexpected word "yes"/],
    ['{ "a": 01 }', 1, 9, /malformed number/],
    ['{ "a": 1. }', 1, 9, /malformed number/],
    ['{ "a": -x }', 1, 8, /malformed number/],
    ['{ "a": +1 }', 1, 8, /expected a value, got '\+'/],
    ['{ "a": "line\nbreak" }', 1, 13, /may not span lines/],
    ['{ "a": "tab\there" }', 1, 12, /must be escaped/],
    ['"\\x"', 1, 2, /unknown escape \\x/],
    ['"\\u12g4"', 1, 2, /four hex digits/],
    ['"open', 1, 6, /end of file inside a string/],
    ['{ "a": 1', 1, 9, /expected ',' or '}'.*end of file/],
    ['[', 1, 2, /end of file: expected a value/],
    ['{} {}', 1, 4, /after the end of the JSON value/],
    ['{\n  "port": 1,\n  "port": 2\n}', 3, 3, /duplicate key "port" \(first given on line 2\)/],
  ];
  for (const [text, line, column, message] of cases) {
    const error = syntaxError(text);
    assert.deepEqual([error.line, error.column], [line, column], `${JSON.stringify(text)}: ${error.message}`);
    assert.match(error.detail, message, JSON.stringify(text));
    assert.equal(error.message, `${line}:${column}: ${error.detail}`);
  }
});

test('nesting deeper than 256 levels is an error, not a stack overflow', () => {
  assert.match(syntaxError(`${'['.repeat(100_000)}${']'.repeat(100_000)}`).detail, /nested deeper than 256/);
  assert.deepEqual(toPlain(parseJson(`${'['.repeat(200)}${']'.repeat(200)}`)), JSON.parse(`${'['.repeat(200)}${']'.repeat(200)}`));
});
