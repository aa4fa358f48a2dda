-- Two people for sensitive identity changes: granting security, approver or admin, or registering a
-- runner for a production segment, is a pending request until a second security person confirms.
-- Role bindings may name a segment (`operator@dev`); they stay in the existing text[] role columns.

CREATE TABLE access_requests (
  id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('grant_roles', 'register_runner')),
  -- The user whose roles change, or the runner identity that waits for confirmation.
  target_id uuid NOT NULL,
  target_name text NOT NULL,
  -- grant_roles: the roles before the request and the roles it sets.
  roles_before text[] NOT NULL DEFAULT '{}',
  roles_after text[] NOT NULL DEFAULT '{}',
  -- register_runner: the runner's segment.
  segment text,
  requested_by text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
  decided_by text,
  decided_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Nobody confirms their own request.
  CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX access_requests_pending ON access_requests (created_at) WHERE status = 'pending';

-- A runner identity registered for a production segment authenticates only once confirmed.
ALTER TABLE runner_identities ADD COLUMN pending_request uuid;
