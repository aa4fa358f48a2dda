/**
 * DESIGN.md invariant 8: control-room/ and runner/ never import each other; they share only
 * @orderly/shared. Each of their tsconfig files maps the other package to this file, which lies
 * outside both projects' rootDir, so such an import fails to compile (TS6059 / TS6307).
 */
export {};
