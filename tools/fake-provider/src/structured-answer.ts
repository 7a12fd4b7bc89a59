/**
 * JSON answers for `response_format`, as a model that honours it gives them:
 * `json_object` gets a JSON object holding the answer's text; `json_schema`
 * gets a minimal instance of the schema (required properties only, lists at
 * their `minItems`, numbers at their lower bound), strings filled with the
 * answer's text within their length bounds. Deterministic: the same text and
 * schema give the same JSON.
 */

/** The `response_format` of a request, as the fake acts on it. */
export type FakeResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: unknown; strict: boolean };

type Schema = Record<string, unknown>;

const isRecord = (value: unknown): value is Schema =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Nesting beyond this (a recursive `$ref`) ends in `null`. */
const MAX_DEPTH = 32;

/** The schema a local `$ref` (`#/$defs/x`, `#/definitions/x`, `#`) points to, or undefined. */
function resolveRef(ref: string, root: Schema): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isRecord(node)) return undefined;
    node = node[key];
  }
  return isRecord(node) ? node : undefined;
}

/** A string for a schema: a format's canonical example, else the text within the length bounds. */
function stringFor(schema: Schema, text: string): string {
  switch (schema.format) {
    case 'date-time':
      return '2024-01-01T00:00:00Z';
    case 'date':
      return '2024-01-01';
    case 'time':
      return '00:00:00Z';
    case 'email':
      return 'answer@example.com';
    case 'uri':
    case 'url':
      return 'https://example.com/';
    case 'uuid':
      return '00000000-0000-4000-8000-000000000000';
    default:
      break;
  }
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : Infinity;
  let value = text;
  while (value.length < min) value += value.length === 0 ? 'x' : ` ${text || 'x'}`;
  return value.slice(0, Math.max(min, Math.min(max, value.length)));
}

/** A number for a schema: its lower bound (0 when it has none), kept under its upper bound. */
function numberFor(schema: Schema, integer: boolean): number {
  const step = integer ? 1 : 0.5;
  let value = 0;
  if (typeof schema.minimum === 'number') value = schema.minimum;
  else if (typeof schema.exclusiveMinimum === 'number') value = schema.exclusiveMinimum + step;
  else if (typeof schema.maximum === 'number' && schema.maximum < 0) value = schema.maximum;
  else if (typeof schema.exclusiveMaximum === 'number' && schema.exclusiveMaximum <= 0)
    value = schema.exclusiveMaximum - step;
  return integer ? Math.ceil(value) : value;
}

/** The schema's type, the first non-null one of a list; inferred from its keywords when absent. */
function typeOf(schema: Schema): string | undefined {
  const type = schema.type;
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) {
    const types = type.filter((entry): entry is string => typeof entry === 'string');
    return types.find((entry) => entry !== 'null') ?? types[0];
  }
  if (isRecord(schema.properties) || Array.isArray(schema.required)) return 'object';
  if (schema.items !== undefined || schema.prefixItems !== undefined) return 'array';
  return undefined;
}

/**
 * A minimal instance of a JSON schema that validates against it, for the
 * keywords structured output uses (`type`, `properties`, `required`,
 * `items`, `enum`, `const`, `anyOf`/`oneOf`/`allOf`, local `$ref`, length
 * and numeric bounds, common string formats).
 */
export function minimalInstance(schema: unknown, text: string, root: unknown = schema, depth = 0): unknown {
  if (!isRecord(schema) || depth > MAX_DEPTH) return null;
  const rootSchema = isRecord(root) ? root : {};
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(schema.$ref, rootSchema);
    return target ? minimalInstance(target, text, rootSchema, depth + 1) : null;
  }
  if (Object.hasOwn(schema, 'const')) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      // A branch that is not just `null`, when there is one: the answer is then more useful.
      const branch = branches.find((entry) => !(isRecord(entry) && entry.type === 'null')) ?? branches[0];
      return minimalInstance(branch, text, rootSchema, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    const parts = schema.allOf.map((part) => minimalInstance(part, text, rootSchema, depth + 1));
    if (parts.every(isRecord)) return Object.assign({}, ...parts);
    return parts[0];
  }
  switch (typeOf(schema)) {
    case 'object': {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required)
        ? schema.required.filter((name): name is string => typeof name === 'string')
        : [];
      const instance: Record<string, unknown> = {};
      for (const name of required) {
        instance[name] = minimalInstance(properties[name] ?? {}, text, rootSchema, depth + 1);
      }
      return instance;
    }
    case 'array': {
      const count = typeof schema.minItems === 'number' ? schema.minItems : 0;
      const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
      return Array.from({ length: count }, (_, index) =>
        minimalInstance(prefix[index] ?? schema.items ?? {}, text, rootSchema, depth + 1),
      );
    }
    case 'string':
      return stringFor(schema, text);
    case 'integer':
      return numberFor(schema, true);
    case 'number':
      return numberFor(schema, false);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      // No constraint at all: any value validates; a string carries the answer.
      return text;
  }
}

/** The content of a JSON answer for `format`, the answer's own text inside. */
export function jsonAnswerContent(format: FakeResponseFormat, text: string): string {
  if (format.type === 'json_schema') {
    return JSON.stringify(minimalInstance(format.schema ?? { type: 'object' }, text));
  }
  return JSON.stringify({ answer: text });
}
