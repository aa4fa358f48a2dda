-- Fencing tokens and leases per attempt (issue 12). A claim gives the attempt a random fencing
-- token and a lease the runner renews while the run is active; a second claim while the lease is
-- alive is refused (a duplicate delivery, not a lost attempt), and step, credential-lease and
-- finished-report writes must carry the attempt's token. Rows from before have no token and no
-- lease: they are treated as expired (today's lost-attempt path) and accept no fenced write.

ALTER TABLE run_attempts ADD COLUMN fence text;
ALTER TABLE run_attempts ADD COLUMN lease_ms integer;
ALTER TABLE run_attempts ADD COLUMN lease_expires_at timestamptz;
