/** Orderly's Vault client wrapper and the dev Vault. */
export {
  createVaultClientFactory,
  type VaultClient, type BotRoleSpec, type CallOptions, type KvMetadata, type KvSecret, type LoginResult, type TokenInfo, type TransitKeyInfo,
  type UnwrappedSecretId, type VaultClientConfig, type VaultClientFactory, type WrappedSecretId,
} from './client';
export { KvSecretPath, renderBotPolicy, secretIdCreationPath } from './policy';
export { backoffDelay, type RetryClock, type VaultRetryEvent } from './retry';
export { classifyFailure, sanitizeVaultMessage, type Failure, type FailureKind } from './failures';
export { startDevVault, loopbackBindAddress, type DevVault, type DevVaultOptions } from './dev-vault';
