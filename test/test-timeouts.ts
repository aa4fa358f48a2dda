import { readFileSync } from 'node:fs';
import ts from 'typescript';

/**
 * Checks that every test's Jest timeout exceeds the sum of the waits inside it, with margin, so a
 * loaded machine that is slow (not wrong) does not fail a test by its timeout before one of its own
 * bounded waits could. The waits counted: `waitFor` (its bound, else 15 s), `waitForRun` (else 30 s),
 * a ledger's `holdNext` (else 45 s), `setTimeout`/`delay`/`sleep` with a constant, and the same in
 * the file's own helper functions a test calls (two levels deep). Numbers are read from literals
 * and the file's constants; a wait whose bound is not a constant counts as its default.
 */
export const TIMEOUT_MARGIN_MS = 20_000;
/** The integration project's default timeout (test/integration-setup.ts). */
export const DEFAULT_TEST_TIMEOUT_MS = 60_000;

export interface TimeoutFinding {
  line: number;
  name: string;
  timeoutMs: number;
  waitsMs: number;
}

export function shortTimeouts(file: string, margin = TIMEOUT_MARGIN_MS): TimeoutFinding[] {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const consts = new Map<string, number>();
  const fns = new Map<string, ts.Node>();
  const num = (n: ts.Node | undefined): number | undefined => {
    if (!n) return undefined;
    if (ts.isNumericLiteral(n)) return Number(n.text.replace(/_/g, ''));
    if (ts.isIdentifier(n)) return consts.get(n.text);
    if (ts.isBinaryExpression(n)) {
      const a = num(n.left);
      const b = num(n.right);
      if (a === undefined || b === undefined) return undefined;
      if (n.operatorToken.kind === ts.SyntaxKind.AsteriskToken) return a * b;
      if (n.operatorToken.kind === ts.SyntaxKind.PlusToken) return a + b;
    }
    return undefined;
  };
  const declarations = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && n.initializer && ts.isIdentifier(n.name)) {
      const value = num(n.initializer);
      if (value !== undefined) consts.set(n.name.text, value);
      if ((ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer)) && n.initializer.body) fns.set(n.name.text, n.initializer.body);
    }
    if (ts.isFunctionDeclaration(n) && n.name && n.body) fns.set(n.name.text, n.body);
    ts.forEachChild(n, declarations);
  };
  declarations(src);
  const waits = (node: ts.Node, depth = 0): number => {
    let total = 0;
    const walk = (n: ts.Node): void => {
      if (ts.isCallExpression(n)) {
        const callee = n.expression;
        const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : '';
        if (name === 'waitFor') total += num(n.arguments[1]) ?? 15_000;
        else if (name === 'waitForRun') total += num(n.arguments[2]) ?? 30_000;
        else if (name === 'holdNext') total += num(n.arguments[2]) ?? 45_000;
        else if (name === 'setTimeout') total += num(n.arguments[1]) ?? 0;
        else if (name === 'delay' || name === 'sleep') total += num(n.arguments[0]) ?? 0;
        else if (fns.has(name) && depth < 2) total += waits(fns.get(name)!, depth + 1);
      }
      ts.forEachChild(n, walk);
    };
    walk(node);
    return total;
  };
  const findings: TimeoutFinding[] = [];
  const tests = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && (n.expression.text === 'test' || n.expression.text === 'it') && n.arguments.length >= 2) {
      const waitsMs = waits(n.arguments[1]!);
      const timeoutMs = n.arguments[2] ? num(n.arguments[2]) : DEFAULT_TEST_TIMEOUT_MS;
      if (waitsMs > 0 && (timeoutMs === undefined || timeoutMs < waitsMs + margin)) {
        findings.push({
          line: src.getLineAndCharacterOfPosition(n.getStart()).line + 1,
          name: n.arguments[0]!.getText(src).slice(0, 80),
          timeoutMs: timeoutMs ?? NaN,
          waitsMs,
        });
      }
    }
    ts.forEachChild(n, tests);
  };
  tests(src);
  return findings;
}
