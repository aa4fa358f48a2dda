import { OrderlyError, Signer } from '@orderly/shared';
import type { VaultClient } from '@orderly/shared/vault';

/**
 * The control room's signing key kept in Vault Transit (ed25519): the private key never leaves
 * Vault. The public key of the newest version is read at start and published to runners; a
 * signature by another version (the key was rotated since) is refused rather than sent out
 * unverifiable — restart the control room to publish the new key.
 */
export async function transitSigner(vault: VaultClient, keyName: string): Promise<Signer> {
  await vault.transitCreateKey(keyName, 'ed25519'); // a no-op when the key exists
  const { version, publicKey } = await vault.transitSigningKey(keyName);
  return {
    publicKey,
    async sign(data) {
      const { signature, keyVersion } = await vault.transitSign(keyName, data);
      if (keyVersion !== version) {
        throw new OrderlyError(
          'ORDERLY_E_KEY_INVALID',
          `transit key ${keyName} was rotated to version ${keyVersion}; restart the control room to publish its public key`,
        );
      }
      return Buffer.from(signature.split(':')[2] ?? '', 'base64');
    },
  };
}
