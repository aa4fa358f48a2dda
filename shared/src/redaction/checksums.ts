/**
 * Check digits and issuing rules of the identifiers the pattern layer recognises. They are what
 * keeps a ten-digit order number from being masked as an NPI: a shape alone is not enough when a
 * checksum exists.
 */

/** Luhn (mod 10) over a string of decimal digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The Luhn digit that makes `partial + digit` valid. */
export function luhnCheckDigit(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(partial + d)) return String(d);
  throw new Error('unreachable: one Luhn digit always fits');
}

/** NPI: ten digits starting with 1 or 2, Luhn-valid once prefixed with the 80840 issuer code. */
export function npiValid(npi: string): boolean {
  return /^[12]\d{9}$/.test(npi) && luhnValid('80840' + npi);
}

/**
 * SSN issuing rules: area 000, 666 and 900-999 are never assigned, nor group 00 or serial 0000.
 * Takes the nine digits without separators.
 */
export function ssnValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false;
  const area = Number(digits.slice(0, 3));
  const group = digits.slice(3, 5);
  const serial = digits.slice(5);
  return area !== 0 && area !== 666 && area < 900 && group !== '00' && serial !== '0000';
}

/**
 * Payment card: issuer prefix and length of the major networks, then Luhn. Takes the digits
 * without separators.
 */
export function cardValid(digits: string): boolean {
  const n = digits.length;
  if (n < 13 || n > 19 || !/^\d+$/.test(digits)) return false;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  const issued =
    (digits[0] === '4' && (n === 13 || n === 16 || n === 19)) ||
    (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n === 16) ||
    ((p2 === 34 || p2 === 37) && n === 15) ||
    ((p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65) && n >= 16) ||
    (p4 >= 3528 && p4 <= 3589 && n >= 16) ||
    (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) && n >= 14) ||
    (p2 === 62 && n >= 16);
  return issued && luhnValid(digits);
}

const VIN_VALUES: Readonly<Record<string, number>> = {
  A: 1,
  B: 2,
  C: 3,
  D: 4,
  E: 5,
  F: 6,
  G: 7,
  H: 8,
  J: 1,
  K: 2,
  L: 3,
  M: 4,
  N: 5,
  P: 7,
  R: 9,
  S: 2,
  T: 3,
  U: 4,
  V: 5,
  W: 6,
  X: 7,
  Y: 8,
  Z: 9,
};
const VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2] as const;

/** The ninth character of a North American VIN (`0`-`9` or `X`), computed from the other sixteen. */
export function vinCheckChar(vin: string): string | undefined {
  const upper = vin.toUpperCase();
  if (!/^[A-HJ-NPR-Z0-9]{17}$/.test(upper)) return undefined;
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const c = upper[i] as string;
    const v = c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : VIN_VALUES[c];
    if (v === undefined) return undefined;
    sum += v * (VIN_WEIGHTS[i] as number);
  }
  const r = sum % 11;
  return r === 10 ? 'X' : String(r);
}

/** VIN: 17 characters without I, O, Q, whose ninth character is the check digit. */
export function vinValid(vin: string): boolean {
  const check = vinCheckChar(vin);
  return check !== undefined && vin.toUpperCase()[8] === check;
}

/** DEA registration: two letters, six digits and a check digit (d1+d3+d5 + 2·(d2+d4+d6)) mod 10. */
export function deaValid(dea: string): boolean {
  if (!/^[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}$/.test(dea)) return false;
  const d = dea.slice(2).split('').map(Number) as [number, number, number, number, number, number, number];
  return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 === d[6];
}

/**
 * Medicare Beneficiary Identifier: 11 characters, positions 1, 4, 7, 10 and 11 numeric (1 not 0),
 * 2, 5, 8 and 9 letters, 3 and 6 either, letters never S, L, O, I, B or Z. Dashes removed.
 */
export function mbiValid(mbi: string): boolean {
  return /^[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d[AC-HJKMNP-RT-Y]{2}\d{2}$/.test(mbi.toUpperCase());
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** A calendar date a person could have been born on or treated at (years 1880-2099). */
export function plausibleDate(year: number, month: number, day: number): boolean {
  if (!(year >= 1880 && year <= 2099 && month >= 1 && month <= 12 && day >= 1)) return false;
  if (day > (DAYS_IN_MONTH[month - 1] as number)) return false;
  return !(month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)));
}
