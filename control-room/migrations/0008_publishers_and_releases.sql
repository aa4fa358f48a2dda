-- Who published each package (separation of duties at promotion), release attestations (promotion
-- to a channel, signed with the release key) and who revoked a publisher key.

ALTER TABLE packages ADD COLUMN published_by text;
ALTER TABLE packages ADD COLUMN published_by_actor text;
ALTER TABLE publisher_keys ADD COLUMN revoked_by text;
CREATE TABLE release_attestations (
  id bigserial PRIMARY KEY,
  digest text NOT NULL REFERENCES packages(digest),
  channel text NOT NULL CHECK (channel IN ('dev', 'prod')),
  approver_id text NOT NULL,
  approver_actor text NOT NULL,
  approved_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  ticket text,
  envelope jsonb NOT NULL
);
CREATE INDEX release_attestations_digest ON release_attestations (digest, channel);
