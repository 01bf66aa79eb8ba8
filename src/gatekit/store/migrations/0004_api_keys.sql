-- The decision server's API keys: only a hash of each secret is kept.
CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,  -- the public part of the key, in every token
    name        TEXT NOT NULL,     -- who holds it; recorded as the reviewer identity
    role        TEXT NOT NULL,     -- agent | reviewer | admin
    secret_hash TEXT NOT NULL,     -- SHA-256 of the whole token, hex
    created_at  DOUBLE PRECISION NOT NULL,  -- seconds since the epoch
    revoked_at  DOUBLE PRECISION
);
