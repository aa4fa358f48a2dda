/**
 * Redaction on every path out of a run (invariant 4): declared values and secrets in every
 * encoding, structured pino paths (`REDACT_PATHS` in logging/logger.ts), and labelled patterns
 * for the HIPAA Safe Harbor identifiers that have a shape. Fails closed.
 */
export { PATTERN_LABELS, VALUE_LABELS, mergeSpans, applyMasks } from './types';
export type { PatternLabel, ValueLabel, RedactionLabel, Span } from './types';
export { MIN_VALUE_LENGTH, assertMaskable, declaredPhiFromInput } from './values';
export type { DeclaredPhi, DeclaredValues } from './values';
export { createRedactor } from './redactor';
export type { Redactor, RedactorOptions, Detector } from './redactor';
export { createRedactingStream, DROPPED_LINES_MESSAGE } from './stream';
export type { RedactingStream, RedactingStreamOptions, Destination } from './stream';
export { redactedFileName, FILE_NAME_MAX, REDACTED_FILE_NAME } from './file-names';
export { redactError, redactErrorBody, REDACTION_FAILED } from './errors';
export type { RedactedError } from './errors';
export { EvalLine, EvalSpan, parseEvalJsonl, scanEvalLines, evaluateRedaction, formatEvalReport } from './eval';
export type { EvalReport, LabelFigures, MaskFigures } from './eval';
