-- Key fingerprints (issue 18): every control-room replica on this database must hold the same key
-- material. At first start a replica records one fingerprint per key (a hash of public or derived
-- identifiers, never a secret); a replica whose fingerprints differ refuses to start
-- (ORDERLY_E_KEYS_MISMATCH) instead of failing reports, MACs and signatures later.
CREATE TABLE key_fingerprints (
  name text PRIMARY KEY,
  fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);
