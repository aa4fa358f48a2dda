import { isOrderlyError, OrderlyError } from '../errors';

/** The coded error `fn` throws; fails the test if it throws nothing or an uncoded error. */
export function refusal(fn: () => unknown): OrderlyError {
  try {
    fn();
  } catch (err) {
    if (isOrderlyError(err)) return err;
    throw err;
  }
  throw new Error('expected a coded error, but nothing was thrown');
}

/** The code of the error `fn` throws (see `refusal`). */
export const codeOf = (fn: () => unknown): string => refusal(fn).code;
