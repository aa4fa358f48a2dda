/**
 * Structured fields that are always censored, wherever they appear (one level deep and at the
 * top). A constant list: never built from user input.
 */
export const REDACT_KEYS = [
  'password', 'passwd', 'secret', 'secrets', 'token', 'accessToken', 'refreshToken', 'apiKey', 'api_key',
  'authorization', 'Authorization', 'cookie', 'Cookie', 'set-cookie', 'privateKey', 'privateKeyPem',
  'ssn', 'dob', 'dateOfBirth', 'memberId', 'input', 'secretId', 'secret_id', 'client_token', 'wrapToken',
] as const;
