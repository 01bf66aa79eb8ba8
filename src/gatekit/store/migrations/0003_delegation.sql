-- Delegation: the agents' public keys (and which are trusted roots), and the
-- nonces of request proofs already accepted, shared by every process on the store.
CREATE TABLE agent_keys (
    key_id     TEXT PRIMARY KEY,  -- RFC 7638 thumbprint
    identity   TEXT NOT NULL,
    public_key TEXT NOT NULL,     -- PEM
    algorithm  TEXT NOT NULL,
    status     TEXT NOT NULL,     -- active | revoked
    is_root    INTEGER NOT NULL,  -- 1: may issue delegation tokens from nothing
    not_before DOUBLE PRECISION,  -- seconds since the epoch
    not_after  DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);

CREATE TABLE delegation_nonces (
    nonce      TEXT PRIMARY KEY,  -- <key id>:<nonce>
    expires_at DOUBLE PRECISION NOT NULL  -- past it, the proof is stale anyway
);
CREATE INDEX delegation_nonces_by_expiry ON delegation_nonces (expires_at);
