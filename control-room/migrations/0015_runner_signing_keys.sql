-- Runners sign their reports with Ed25519 keys of their own (issue 11, item 2). The control room
-- keeps the public key and its fingerprint (the `sig.key` of a report); the private key is a 0600
-- file on the runner. Identities registered before this migration have no key: their reports are
-- refused until they are registered again with one.
ALTER TABLE runner_identities ADD COLUMN public_key text;
ALTER TABLE runner_identities ADD COLUMN key_id text UNIQUE;

-- Revoked bootstrap runner credentials (the per-segment token and key files in the control
-- room's secrets directory). A revocation is permanent: the segment's runners register identities.
CREATE TABLE bootstrap_runner_revocations (
  segment text PRIMARY KEY,
  revoked_at timestamptz NOT NULL DEFAULT now(),
  revoked_by text NOT NULL
);
