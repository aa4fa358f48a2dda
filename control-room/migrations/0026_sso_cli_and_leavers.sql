-- Single sign-on, second part.
--
-- The leaver check: the provider's refresh token of a person's last sign-in, sealed with the
-- control room's data key (AES-256-GCM, like credentials), so the control room can ask the
-- provider at intervals whether the person is still there (a refused refresh ends their sessions
-- and API tokens). It is never logged, audited or shown; it is dropped when access ends.
ALTER TABLE sso_identities
  ADD COLUMN refresh_token jsonb,
  ADD COLUMN checked_at timestamptz;

-- `orderly login --sso`: the one-time code the control room hands the CLI's loopback listener
-- after a sign-in at the provider. Only its SHA-256 is kept, with the PKCE challenge of the CLI
-- process that started the sign-in; the code is redeemed once (deleted), within a minute.
CREATE TABLE sso_cli_codes (
  code_hash text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users(id),
  code_challenge text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
