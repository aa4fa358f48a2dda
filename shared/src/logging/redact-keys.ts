/**
 * Structured fields that are always censored, at any depth (pino at the top level and in request
 * headers, the line redactor everywhere else). A constant list: never built from user input.
 */
export const REDACT_KEYS = [
  'password', 'passwd', 'secret', 'secrets', 'token', 'accessToken', 'refreshToken', 'apiKey', 'api_key',
  'authorization', 'Authorization', 'cookie', 'Cookie', 'set-cookie', 'privateKey', 'privateKeyPem',
  'ssn', 'dob', 'dateOfBirth', 'memberId', 'input', 'secretId', 'secret_id', 'client_token', 'wrapToken',
  'x-vault-token', 'X-Vault-Token', 'proxy-authorization', 'x-api-key', 'clientSecret', 'client_secret', 'mrn', 'mbi', 'cardNumber', 'cvv',
] as const;
