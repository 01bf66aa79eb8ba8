-- Decisions, approvals and idempotency keys; the audit chains and their checkpoints.
-- Portable SQL: the same statements run on SQLite and PostgreSQL.

CREATE TABLE decisions (
    decision_id     TEXT PRIMARY KEY,
    approval_id     TEXT UNIQUE,
    idempotency_key TEXT UNIQUE,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    consumed_at     TEXT,
    agent_id        TEXT,
    decision        TEXT NOT NULL,  -- the Decision, JSON
    action          TEXT NOT NULL,  -- the action as received (DLP-masked), JSON
    outcome         TEXT            -- the reported Outcome, JSON
);

CREATE INDEX decisions_by_status ON decisions (status, created_at);

CREATE TABLE audit_heads (
    writer_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE audit_records (
    writer_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    record_id   TEXT NOT NULL UNIQUE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    decision_id TEXT,
    body        TEXT NOT NULL,  -- canonical JSON; hash = SHA-256(body)
    hash        TEXT NOT NULL,
    PRIMARY KEY (writer_id, seq)
);

CREATE INDEX audit_records_by_decision ON audit_records (decision_id);

CREATE TABLE audit_checkpoints (
    writer_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL,
    at        TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    body      TEXT NOT NULL,  -- the signed canonical JSON
    signature TEXT NOT NULL,  -- Ed25519, hex
    PRIMARY KEY (writer_id, seq)
);
