-- Fleet inventory and health, SQLite dialect. Integers are 64-bit; timestamps are UTC
-- milliseconds since the epoch; enumerations are stored as their StarlingX spelling.

CREATE TABLE regions (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    lat     REAL NOT NULL,
    lon     REAL NOT NULL
);

CREATE TABLE system_controllers (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    region_id         INTEGER NOT NULL REFERENCES regions(id),
    city              TEXT NOT NULL,
    lat               REAL NOT NULL,
    lon               REAL NOT NULL,
    endpoint          TEXT NOT NULL,
    availability      TEXT NOT NULL DEFAULT 'created',
    capacity          INTEGER NOT NULL,
    reserved_capacity INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE subcloud_groups (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    description            TEXT NOT NULL DEFAULT '',
    update_apply_type      TEXT NOT NULL DEFAULT 'parallel',
    max_parallel_subclouds INTEGER NOT NULL DEFAULT 2,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);

-- Group 1 is "Default" (parallel, 2 at a time), as in StarlingX.
INSERT INTO subcloud_groups (id, name, description, update_apply_type, max_parallel_subclouds, created_at, updated_at)
VALUES (1, 'Default', 'Default subcloud group', 'parallel', 2, 0, 0);

CREATE TABLE peer_groups (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    priority              INTEGER NOT NULL DEFAULT 0,
    state                 TEXT NOT NULL DEFAULT 'enabled',
    max_subcloud_rehoming INTEGER NOT NULL DEFAULT 10,
    leader_id             INTEGER NOT NULL REFERENCES system_controllers(id),
    migration_status      TEXT NOT NULL DEFAULT 'none',
    owner_epoch           INTEGER NOT NULL DEFAULT 1,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE subclouds (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    description       TEXT NOT NULL DEFAULT '',
    location          TEXT NOT NULL DEFAULT '',
    city              TEXT NOT NULL DEFAULT '',
    country           TEXT NOT NULL DEFAULT '',
    region_id         INTEGER NOT NULL REFERENCES regions(id),
    lat               REAL NOT NULL,
    lon               REAL NOT NULL,
    management_state  TEXT NOT NULL DEFAULT 'unmanaged',
    availability      TEXT NOT NULL DEFAULT 'offline',
    deploy_status     TEXT NOT NULL DEFAULT 'not-deployed',
    sync_status       TEXT NOT NULL DEFAULT 'unknown',
    software_version  TEXT NOT NULL DEFAULT '',
    group_id          INTEGER NOT NULL DEFAULT 1 REFERENCES subcloud_groups(id),
    peer_group_id     INTEGER REFERENCES peer_groups(id),
    controller_id     INTEGER NOT NULL REFERENCES system_controllers(id),
    -- Alarm roll-up (reference §1.7), kept in the same transaction as the alarms table.
    alarm_status      TEXT NOT NULL DEFAULT 'OK',
    -- Severity order of alarm_status (critical 3, degraded 2, OK 1, disabled 0), indexed
    -- with the name so "worst first" pages come straight off the index.
    alarm_rank        INTEGER NOT NULL DEFAULT 1,
    critical_alarms   INTEGER NOT NULL DEFAULT 0,
    major_alarms      INTEGER NOT NULL DEFAULT 0,
    minor_alarms      INTEGER NOT NULL DEFAULT 0,
    warnings          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX subclouds_availability ON subclouds(availability);
CREATE INDEX subclouds_alarm_status ON subclouds(alarm_status);
CREATE INDEX subclouds_alarm_rank ON subclouds(alarm_rank, name);
-- Worst first, names A to Z: the list's most used order.
CREATE INDEX subclouds_alarm_rank_desc ON subclouds(alarm_rank DESC, name);
CREATE INDEX subclouds_sync_status ON subclouds(sync_status);
CREATE INDEX subclouds_deploy_status ON subclouds(deploy_status);
CREATE INDEX subclouds_group ON subclouds(group_id);
CREATE INDEX subclouds_peer_group ON subclouds(peer_group_id);
CREATE INDEX subclouds_controller ON subclouds(controller_id);

CREATE TABLE subcloud_endpoints (
    subcloud_id   INTEGER NOT NULL REFERENCES subclouds(id) ON DELETE CASCADE,
    endpoint_type TEXT NOT NULL,
    sync_status   TEXT NOT NULL DEFAULT 'unknown',
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (subcloud_id, endpoint_type)
);

CREATE TABLE alarms (
    id           INTEGER PRIMARY KEY,
    subcloud_id  INTEGER NOT NULL REFERENCES subclouds(id) ON DELETE CASCADE,
    alarm_id     TEXT NOT NULL,
    severity     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    entity       TEXT NOT NULL,
    raised_at    INTEGER NOT NULL,
    cleared_at   INTEGER,
    acknowledged INTEGER NOT NULL DEFAULT 0
);
-- At most one active alarm per (subcloud, alarm id, entity), as X.733 keys alarms by id and
-- entity instance: raising twice is idempotent.
CREATE UNIQUE INDEX alarms_active ON alarms(subcloud_id, alarm_id, entity) WHERE cleared_at IS NULL;
CREATE INDEX alarms_subcloud ON alarms(subcloud_id, raised_at);
CREATE INDEX alarms_active_severity ON alarms(severity) WHERE cleared_at IS NULL;

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    summary     TEXT NOT NULL,
    client_addr TEXT,
    outcome     TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);

-- Small key/value facts the controller keeps about itself (e.g. the demo fleet's size).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
