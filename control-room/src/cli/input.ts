import { readFileSync } from 'node:fs';
import { OrderlyError } from '@orderly/shared';

/** The JSON of a run or schedule input file; an unreadable or malformed file is a coded error. */
export function readJsonInput(path: string | undefined): unknown {
  if (!path) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new OrderlyError('ORDERLY_E_INPUT_INVALID', `${path} is not a readable JSON file`);
  }
}
