-- Least privilege around bot names (issue 11, items 1 and 6): teams of people and service
-- accounts own bot names; publisher keys are bound to a person or to a service account, and a
-- service account to the person who answers for it, so separation of duties at promotion is
-- checked by person; each package version has its own Vault role; a run whose result held a
-- leased secret is flagged.

CREATE TABLE teams (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE team_members (
  team_id uuid NOT NULL REFERENCES teams(id),
  member_kind text NOT NULL CHECK (member_kind IN ('user', 'service')),
  member_id uuid NOT NULL,
  added_by text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, member_kind, member_id)
);
CREATE INDEX team_members_member ON team_members (member_kind, member_id);
-- One owning team per bot name, claimed by the first publish that has a team; moved only by a
-- transfer (audited, step-up).
CREATE TABLE bot_owners (
  name text PRIMARY KEY,
  team_id uuid NOT NULL REFERENCES teams(id),
  claimed_by text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  transferred_by text,
  transferred_at timestamptz
);
-- NULL owner: a key registered before keys were bound (legacy): it may publish only names no team owns.
ALTER TABLE publisher_keys ADD COLUMN owner_kind text CHECK (owner_kind IN ('user', 'service'));
ALTER TABLE publisher_keys ADD COLUMN owner_id uuid;
ALTER TABLE publisher_keys ADD CONSTRAINT publisher_keys_owner_both CHECK ((owner_kind IS NULL) = (owner_id IS NULL));
ALTER TABLE service_accounts ADD COLUMN owner_user_id uuid REFERENCES users(id);
-- The principal kind of the uploader ('user', 'service', 'admin'), to find a service account's owner.
ALTER TABLE packages ADD COLUMN published_by_kind text;
-- The Vault AppRole written for this version once it was accepted (NULL: it declares no credentials).
ALTER TABLE packages ADD COLUMN vault_role text;
ALTER TABLE runs ADD COLUMN flags text[] NOT NULL DEFAULT '{}';
