import { createPublicKey, KeyObject } from 'node:crypto';
import { OrderlyError } from '../errors';

/**
 * The control room publishes one public-key file holding two PEM blocks: its Ed25519 signing key
 * (job envelopes, attestations) and its X25519 key (reports sealed to it). Runners need only it.
 */
export interface ControlRoomPublicKeys {
  signing: KeyObject;
  sealing: KeyObject;
}

export function parseControlRoomPublicKeys(text: string): ControlRoomPublicKeys {
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  let signing: KeyObject | undefined;
  let sealing: KeyObject | undefined;
  for (const block of blocks) {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch {
      continue;
    }
    if (key.asymmetricKeyType === 'ed25519') signing = key;
    if (key.asymmetricKeyType === 'x25519') sealing = key;
  }
  if (!signing || !sealing) {
    throw new OrderlyError('ORDERLY_E_KEY_INVALID', "the control room's public key file must hold an Ed25519 and an X25519 PUBLIC KEY block");
  }
  return { signing, sealing };
}
