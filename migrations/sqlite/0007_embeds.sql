-- Portal embeds, SQLite dialect.

-- Signed, expiring, revocable links to one read-only view. The token is not stored: it is an
-- HMAC of the row's fields under the controller's key (settings.embed_signing_key).
CREATE TABLE embed_links (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('status', 'map', 'strategy', 'peer-group')),
    target     TEXT NOT NULL DEFAULT '',
    label      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- The origins allowed to frame embeds (Content-Security-Policy: frame-ancestors).
CREATE TABLE embed_origins (
    origin   TEXT PRIMARY KEY,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL
);
