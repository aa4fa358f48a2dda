import { RE2JS } from 're2js';
import { OrderlyError } from '../errors';

/**
 * The `pattern` of an input field, compiled for a linear-time engine. A developer writes the
 * pattern in bot.json; the control room matches it on its event loop at every run creation and
 * schedule fire. A backtracking engine (`RegExp`) would let one pattern such as `^(a|a)*$` stall
 * the whole control room on a short input, so patterns are only ever run by re2js (RE2 semantics:
 * time linear in the input, no backreferences or lookaround). A pattern it cannot compile is
 * refused when the package is published, never handed to `RegExp` instead.
 */
export interface InputPattern {
  /** True when the pattern matches anywhere in `value` (JSON Schema `pattern` semantics: unanchored). */
  test(value: string): boolean;
}

const compiled = new Map<string, InputPattern>();
/** Distinct patterns kept compiled; an attacker publishing many cannot grow this without bound. */
const MAX_CACHED = 1000;

/** Why `source` cannot be compiled by the linear-time engine, or null when it can. */
export function inputPatternProblem(source: string): string | null {
  try {
    compile(source);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : 'cannot be compiled';
  }
}

function compile(source: string): InputPattern {
  // ECMA-262 spellings (\uXXXX, (?<name>…), unescaped /) to RE2 syntax; semantics stay RE2's.
  const re = RE2JS.compile(RE2JS.translateRegExp(source));
  return { test: (value) => re.test(value) };
}

/** The compiled pattern; throws ORDERLY_E_INPUT_PATTERN_UNSUPPORTED when RE2 cannot compile it. */
export function inputPattern(source: string): InputPattern {
  const hit = compiled.get(source);
  if (hit) return hit;
  let pattern: InputPattern;
  try {
    pattern = compile(source);
  } catch (err) {
    throw new OrderlyError(
      'ORDERLY_E_INPUT_PATTERN_UNSUPPORTED',
      `an input pattern uses syntax the linear-time matcher (RE2) does not support: ${err instanceof Error ? err.message : 'cannot be compiled'}`,
    );
  }
  if (compiled.size >= MAX_CACHED) compiled.clear();
  compiled.set(source, pattern);
  return pattern;
}
