-- Orchestration: rollout strategies, their waves and one step per site, SQLite dialect.

-- IANA time zone of each site: maintenance windows are in site-local time.
ALTER TABLE subclouds ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
-- The phase an agent reports for a command (StarlingX step state names).
ALTER TABLE subcloud_commands ADD COLUMN phase TEXT NOT NULL DEFAULT '';

-- Releases and versions a strategy may roll out (unknown ones are refused).
CREATE TABLE software_releases (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,          -- 'software' or 'kubernetes'
    version     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (kind, version)
);
INSERT INTO software_releases (kind, version, description, created_at) VALUES
    ('software', '22.12', 'StarlingX 8.0', 0),
    ('software', '24.09', 'StarlingX 9.0', 0),
    ('software', '25.09', 'StarlingX 10.0', 0),
    ('software', '26.03', 'StarlingX 11.0', 0),
    ('kubernetes', 'v1.29.2', '', 0),
    ('kubernetes', 'v1.30.6', '', 0),
    ('kubernetes', 'v1.31.5', '', 0),
    ('kubernetes', 'v1.32.2', '', 0);

CREATE TABLE strategies (
    id              INTEGER PRIMARY KEY,
    strategy_type   TEXT NOT NULL,
    state           TEXT NOT NULL,
    -- The validated request (JSON): settings the runner reads every tick.
    spec            TEXT NOT NULL,
    target          TEXT NOT NULL,
    args            TEXT NOT NULL DEFAULT '',
    current_wave    INTEGER NOT NULL DEFAULT 0,
    wave_count      INTEGER NOT NULL,
    steps_total     INTEGER NOT NULL,
    steps_complete  INTEGER NOT NULL DEFAULT 0,
    steps_failed    INTEGER NOT NULL DEFAULT 0,
    steps_skipped   INTEGER NOT NULL DEFAULT 0,
    steps_aborted   INTEGER NOT NULL DEFAULT 0,
    steps_in_flight INTEGER NOT NULL DEFAULT 0,
    -- Estimated duration of one step (ms) used for the ETA, and where it came from.
    step_estimate_ms INTEGER NOT NULL,
    -- First attempts of this strategy completed so far and their summed duration: once there
    -- are some, the ETA uses their average instead of the estimate above.
    measured_steps  INTEGER NOT NULL DEFAULT 0,
    measured_ms     INTEGER NOT NULL DEFAULT 0,
    -- Why it paused, waits, failed or was aborted.
    reason          TEXT NOT NULL DEFAULT '',
    -- Bumped by every write: the runner and operators write only over what they read.
    revision        INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
-- One active strategy per type, enforced by the store (two operators creating at once).
CREATE UNIQUE INDEX strategies_one_active_per_type ON strategies(strategy_type)
    WHERE state NOT IN ('complete', 'aborted', 'failed');
CREATE INDEX strategies_created ON strategies(created_at);

CREATE TABLE strategy_waves (
    strategy_id  INTEGER NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
    wave         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    apply_type   TEXT NOT NULL,
    max_parallel INTEGER NOT NULL,
    sites        INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    started_at   INTEGER,
    finished_at  INTEGER,
    soak_until   INTEGER,
    -- Failures an operator accepted by resuming after the budget tripped.
    failures_accepted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (strategy_id, wave)
);

CREATE TABLE strategy_steps (
    id           INTEGER PRIMARY KEY,
    strategy_id  INTEGER NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
    subcloud_id  INTEGER NOT NULL REFERENCES subclouds(id) ON DELETE CASCADE,
    wave         INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'initial',
    phase        TEXT NOT NULL DEFAULT '',
    percent      INTEGER NOT NULL DEFAULT 0,
    -- Attempts started (retries included); the command of the latest one.
    attempt      INTEGER NOT NULL DEFAULT 0,
    command_id   INTEGER,
    details      TEXT NOT NULL DEFAULT '',
    -- What the site ran before its first attempt (the rollback target).
    from_version TEXT NOT NULL DEFAULT '',
    -- A retry waits until then.
    not_before   INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    updated_at   INTEGER NOT NULL,
    UNIQUE (strategy_id, subcloud_id)
);
CREATE INDEX strategy_steps_by_state ON strategy_steps(strategy_id, state, wave, position);
CREATE INDEX strategy_steps_by_subcloud ON strategy_steps(subcloud_id);
