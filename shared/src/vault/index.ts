/** Orderly's Vault client wrapper (the dev Vault is the `@orderly/dev-vault` workspace). */
export {
  createVaultClientFactory,
  type VaultClient,
  type BotRoleSpec,
  type CallOptions,
  type KvMetadata,
  type KvSecret,
  type LoginResult,
  type TokenInfo,
  type TransitKeyInfo,
  type UnwrappedSecretId,
  type VaultClientConfig,
  type VaultClientFactory,
  type WrappedSecretId,
} from './client';
export { KvSecretPath, renderBotPolicy, secretIdCreationPath } from './policy';
export { backoffDelay, type RetryClock, type VaultRetryEvent } from './retry';
export { classifyFailure, sanitizeVaultMessage, type Failure, type FailureKind } from './failures';
