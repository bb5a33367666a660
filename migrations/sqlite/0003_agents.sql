-- Subcloud agents and derived health, SQLite dialect.

-- One row per subcloud that has (or had) an agent credential. Only hashes of the enrollment
-- token and of the secret are kept. `last_seq` refuses replayed reports across restarts.
CREATE TABLE subcloud_agents (
    subcloud_id           INTEGER PRIMARY KEY REFERENCES subclouds(id) ON DELETE CASCADE,
    enrollment_hash       TEXT,
    enrollment_expires_at INTEGER,
    secret_hash           TEXT,
    enrolled_at           INTEGER,
    revoked_at            INTEGER,
    last_seq              INTEGER NOT NULL DEFAULT 0,
    last_report_at        INTEGER,
    health                TEXT NOT NULL DEFAULT 'unknown',
    agent_version         TEXT NOT NULL DEFAULT '',
    highest_epoch         INTEGER NOT NULL DEFAULT 0,
    cpu_cores             INTEGER NOT NULL DEFAULT 0,
    memory_gib            INTEGER NOT NULL DEFAULT 0,
    storage_gib           INTEGER NOT NULL DEFAULT 0,
    hosts                 INTEGER NOT NULL DEFAULT 0,
    updated_at            INTEGER NOT NULL
);

-- Round-trip times agents measured to each controller (geo-redundancy weighs them).
CREATE TABLE subcloud_reachability (
    subcloud_id   INTEGER NOT NULL REFERENCES subclouds(id) ON DELETE CASCADE,
    controller    TEXT NOT NULL,
    reachable     INTEGER NOT NULL,
    rtt_ms        INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (subcloud_id, controller)
);

-- Every availability transition, for the detail page's timeline.
CREATE TABLE availability_history (
    id           INTEGER PRIMARY KEY,
    subcloud_id  INTEGER NOT NULL REFERENCES subclouds(id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    availability TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX availability_history_subcloud ON availability_history(subcloud_id, at);

-- Work queued for agents; delivered in report answers until the agent reports progress.
CREATE TABLE subcloud_commands (
    id          INTEGER PRIMARY KEY,
    subcloud_id INTEGER NOT NULL REFERENCES subclouds(id) ON DELETE CASCADE,
    action      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'queued',
    percent     INTEGER NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX subcloud_commands_open ON subcloud_commands(subcloud_id) WHERE state IN ('queued', 'running');

-- Who raised an alarm: the controller (from health transitions) or the site's agent.
ALTER TABLE alarms ADD COLUMN source TEXT NOT NULL DEFAULT 'controller';
ALTER TABLE alarms ADD COLUMN acknowledged_by TEXT;
ALTER TABLE alarms ADD COLUMN acknowledged_at INTEGER;
CREATE INDEX alarms_raised ON alarms(raised_at);
CREATE INDEX alarms_active_raised ON alarms(raised_at) WHERE cleared_at IS NULL;
