-- Decisions, approvals and idempotency keys; the audit chains and their checkpoints.
-- Portable SQL: the same statements run on SQLite and PostgreSQL.

CREATE TABLE decisions (
    decision_id     TEXT PRIMARY KEY,
    approval_id     TEXT,
    idempotency_key TEXT,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    consumed_at     TEXT,
    agent_id        TEXT,
    decision        TEXT NOT NULL,  -- the Decision, JSON
    action          TEXT NOT NULL,  -- the action as received (DLP-masked), JSON
    outcome         TEXT            -- the reported Outcome, JSON
);

-- Partial indexes: most decisions have neither, and every index entry costs a write.
CREATE UNIQUE INDEX decisions_by_approval ON decisions (approval_id)
    WHERE approval_id IS NOT NULL;
CREATE UNIQUE INDEX decisions_by_idempotency_key ON decisions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX decisions_pending ON decisions (created_at) WHERE status = 'pending_review';

CREATE TABLE audit_heads (
    writer_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE audit_records (
    writer_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    record_id   TEXT NOT NULL,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    decision_id TEXT,
    body        TEXT NOT NULL,  -- canonical JSON; hash = SHA-256(body)
    hash        TEXT NOT NULL,
    PRIMARY KEY (writer_id, seq)
);

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
