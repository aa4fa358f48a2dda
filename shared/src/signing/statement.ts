import { z } from 'zod';
import { BotName, BotVersion } from '../ids';

/** in-toto Statement v1 over one bot package, the payload of the publisher's DSSE envelope. */
export const PACKAGE_PREDICATE_TYPE = 'https://orderly.dev/attestations/bot-package/v1';

export const PackageStatement = z.object({
  _type: z.literal('https://in-toto.io/Statement/v1'),
  subject: z.array(z.object({ name: z.string().min(1).max(200), digest: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }) })).length(1),
  predicateType: z.literal(PACKAGE_PREDICATE_TYPE),
  predicate: z.object({ name: BotName, version: BotVersion, builtAt: z.iso.datetime().optional() }),
});
export type PackageStatement = z.infer<typeof PackageStatement>;

export function packageStatement(name: BotName, version: BotVersion, sha256: string): PackageStatement {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: `${name}-${version}.tgz`, digest: { sha256 } }],
    predicateType: PACKAGE_PREDICATE_TYPE,
    predicate: { name, version },
  };
}
