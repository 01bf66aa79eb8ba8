-- Policy counters (rate limits, budgets, trust, approval memory): durable, and
-- shared by every process that uses this database.
CREATE TABLE policy_events (
    key    TEXT NOT NULL,
    at     DOUBLE PRECISION NOT NULL,  -- seconds since the epoch
    amount DOUBLE PRECISION NOT NULL
);
CREATE INDEX policy_events_by_key ON policy_events (key, at);

CREATE TABLE policy_deadlines (
    key   TEXT PRIMARY KEY,
    until DOUBLE PRECISION NOT NULL  -- e.g. the end of an agent's quarantine
);

-- A call's stable name across retries: a retry finds its open review by it.
ALTER TABLE decisions ADD COLUMN review_key TEXT;
CREATE INDEX decisions_by_review_key ON decisions (review_key) WHERE review_key IS NOT NULL;

-- Consume re-derives a decision's state from its own audit records.
CREATE INDEX audit_records_by_decision ON audit_records (decision_id) WHERE decision_id IS NOT NULL;
