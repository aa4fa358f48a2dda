-- What the runner counted during an attempt (issue 16, Prometheus metrics): log lines its redactor
-- failed on and dropped, and connections the sandbox's egress proxy refused. Counts only, never
-- content; set from the attempt's fenced final report (reports are delivered at least once, so the
-- values are set, not added).
ALTER TABLE run_attempts ADD COLUMN redaction_drops integer NOT NULL DEFAULT 0 CHECK (redaction_drops >= 0);
ALTER TABLE run_attempts ADD COLUMN sandbox_denials integer NOT NULL DEFAULT 0 CHECK (sandbox_denials >= 0);
