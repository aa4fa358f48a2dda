/**
 * The dev Vault: an in-memory server speaking the Vault HTTP API for the endpoints Orderly
 * uses, like `vault server -dev`. Pre-mounted: `secret/` (KV v2), `transit/` (transit) and
 * `auth/approle/` (AppRole), next to the always-present `auth/token/` and `sys/`.
 */
export { startDevVault, loopbackBindAddress, type DevVault, type DevVaultOptions } from './server';
