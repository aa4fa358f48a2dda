/** Milliseconds since the epoch; injected so tests can move time (session expiry, lockout, TOTP). */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
