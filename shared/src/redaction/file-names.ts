import type { Redactor } from './redactor';

/** What a file name may hold after redaction: the control room's screenshot-name rule. */
export const FILE_NAME_MAX = 64;
/** The name given when nothing of a name is left, or its redaction failed (fail closed). */
export const REDACTED_FILE_NAME = 'redacted';

const UNSAFE = /[^A-Za-z0-9._-]+/g;

/** `name` reduced to 1-64 of `A-Z a-z 0-9 . _ -`: each run of other characters becomes `_`. */
function reduce(name: string): string {
  return name
    .replace(UNSAFE, '_')
    .replace(/^[._-]+/, '')
    .slice(0, FILE_NAME_MAX)
    .replace(/[_-]+$/, '');
}

/**
 * A name chosen by bot code (a screenshot's) as it may be stored: redacted first, so that a member
 * id or a secret in it is masked (`member ZZT123` becomes `member_PHI`), then reduced to a safe
 * file-name charset and length. The reduced name is redacted once more, because the reduction
 * can join what the first pass saw apart (`Anna/Smith` becomes `Anna_Smith`). Never throws: a
 * name whose redaction fails becomes `redacted`.
 */
export function redactedFileName(redactor: Pick<Redactor, 'redact'>, name: string): string {
  try {
    const once = reduce(redactor.redact(name));
    const twice = reduce(redactor.redact(once));
    return twice === '' ? REDACTED_FILE_NAME : twice;
  } catch {
    return REDACTED_FILE_NAME;
  }
}
