import { Db } from '../db/db';
import { Clock } from './clock';
import { LockoutPolicy } from './lockout';
import { ScryptParams } from './passwords';

/** What every identity service is built from. */
export interface IdentityDeps {
  db: Db;
  /** The control room's local data key: seals TOTP secrets, keys recovery-code HMACs. */
  dataKey: Buffer;
  dataKeyId: string;
  clock: Clock;
  settings: IdentitySettings;
}

export interface IdentitySettings {
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  tokenMaxDays: number;
  /** A step-up (or the sign-in's own TOTP) stays fresh this long. */
  stepUpMinutes: number;
  enrolmentHours: number;
  lockout: LockoutPolicy;
  scrypt: ScryptParams;
}

export const iso = (ms: number): string => new Date(ms).toISOString();
export const ms = (value: Date | string | null | undefined): number | null => (value === null || value === undefined ? null : new Date(value).getTime());
