/**
 * A structural comparer for contract tests: does `actual` have every field of `expected`, with
 * the same JSON type? Values may differ and `actual` may carry more fields (real Vault sends
 * more than its doc samples show).
 */

type JsonKind = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean' | 'other';

export function jsonKind(value: unknown): JsonKind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'object':
      return 'object';
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    default:
      return 'other';
  }
}

/**
 * Every place where `actual` does not have the shape of `expected`, as `$.a.b: ...` lines
 * (empty when it does). A `null` in `expected` also accepts an object or array: Go serialises
 * an empty map or list as null, so the doc sample's null and a filled value are the same field.
 * Arrays: each element of `actual` is compared with the first element of `expected`.
 * `ignore` lists paths (like `$.data.identity_policies`) that need not be present.
 */
export function shapeMismatches(expected: unknown, actual: unknown, ignore: ReadonlySet<string> = new Set(), path = '$'): string[] {
  if (ignore.has(path)) return [];
  const want = jsonKind(expected);
  const got = jsonKind(actual);
  if (want === 'null') return got === 'null' || got === 'object' || got === 'array' ? [] : [`${path}: expected null (or a map/list), got ${got}`];
  if (want !== got) return [`${path}: expected ${want}, got ${got}`];
  if (want === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const out: string[] = [];
    for (const key of Object.keys(e)) {
      const child = `${path}.${key}`;
      if (ignore.has(child)) continue;
      if (!Object.prototype.hasOwnProperty.call(a, key)) {
        out.push(`${child}: missing`);
        continue;
      }
      out.push(...shapeMismatches(e[key], a[key], ignore, child));
    }
    return out;
  }
  if (want === 'array') {
    const e = expected as unknown[];
    const a = actual as unknown[];
    if (e.length === 0) return [];
    return a.flatMap((item, i) => shapeMismatches(e[0], item, ignore, `${path}[${i}]`));
  }
  return [];
}
