-- Single sign-on (OpenID Connect): the link from a provider's identity (issuer + subject) to a
-- person. The person's roles are recomputed from the provider's groups at every sign-in; the
-- groups last seen are kept for the access review. No token of the provider is stored.

CREATE TABLE sso_identities (
  issuer text NOT NULL,
  subject text NOT NULL,
  user_id uuid NOT NULL UNIQUE REFERENCES users(id),
  groups text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_sign_in_at timestamptz,
  -- Whether the last sign-in's ID token showed a second factor (amr): the compliance MFA check reads it.
  last_mfa boolean NOT NULL DEFAULT false,
  PRIMARY KEY (issuer, subject)
);
