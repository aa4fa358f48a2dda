-- Audit appends in one round trip: lock the chain (advisory lock auditChain = 7301 in
-- control-room/src/db/locks.ts, to the end of the transaction), read the last hash, insert with
-- sha256(prev_hash || canonical content).

CREATE FUNCTION audit_append(p_at timestamptz, p_actor text, p_action text, p_target text, p_outcome text, p_source_ip text, p_request_id text, p_details jsonb, p_content text) RETURNS void LANGUAGE plpgsql AS $$ DECLARE prev text; BEGIN PERFORM pg_advisory_xact_lock(7301); SELECT hash INTO prev FROM audit_events ORDER BY seq DESC LIMIT 1; prev := COALESCE(prev, repeat('0', 64)); INSERT INTO audit_events (at, actor, action, target, outcome, source_ip, request_id, details, prev_hash, hash) VALUES (p_at, p_actor, p_action, p_target, p_outcome, p_source_ip, p_request_id, p_details, prev, encode(sha256(convert_to(prev || p_content, 'UTF8')), 'hex')); END; $$;
