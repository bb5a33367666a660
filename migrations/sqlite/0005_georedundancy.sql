-- Geo-redundancy: system peers, peer group associations, ownership history and controller
-- alarms, SQLite dialect. Every controller keeps a full copy of the fleet; the owner of a peer
-- group (peer_groups.leader_id) is the only one that manages its subclouds.

-- System peers are the system controllers (this one included), with StarlingX's heartbeat
-- settings (reference §1.4). Live heartbeat state is kept in memory; transitions are stored.
ALTER TABLE system_controllers ADD COLUMN uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE system_controllers ADD COLUMN gateway_address TEXT NOT NULL DEFAULT '';
ALTER TABLE system_controllers ADD COLUMN administrative_state TEXT NOT NULL DEFAULT 'enabled';
ALTER TABLE system_controllers ADD COLUMN heartbeat_interval_ms INTEGER NOT NULL DEFAULT 60000;
ALTER TABLE system_controllers ADD COLUMN heartbeat_failure_threshold INTEGER NOT NULL DEFAULT 3;
ALTER TABLE system_controllers ADD COLUMN heartbeat_failure_policy TEXT NOT NULL DEFAULT 'alarm';
-- For policy 'delegate': the controller that decides a takeover of this one's groups.
ALTER TABLE system_controllers ADD COLUMN delegate_to TEXT;
ALTER TABLE system_controllers ADD COLUMN heartbeat_maintenance_timeout_s INTEGER NOT NULL DEFAULT 600;
ALTER TABLE system_controllers ADD COLUMN availability_changed_at INTEGER;

-- Ownership: `revision` counts edits (replication re-syncs when it moves); `home_controller_id`
-- is where failback returns the group; a positive `failback_hold_down_s` fails back
-- automatically that long after the home controller is available again.
ALTER TABLE peer_groups ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE peer_groups ADD COLUMN home_controller_id INTEGER REFERENCES system_controllers(id);
ALTER TABLE peer_groups ADD COLUMN owned_since INTEGER NOT NULL DEFAULT 0;
ALTER TABLE peer_groups ADD COLUMN failback_hold_down_s INTEGER NOT NULL DEFAULT 0;
UPDATE peer_groups SET home_controller_id = leader_id;

-- Rehoming of each subcloud after its group moved: 'none', 'waiting', 'rehomed'. The new
-- owner admits at most max_subcloud_rehoming subclouds of a group per second.
ALTER TABLE subclouds ADD COLUMN rehome_status TEXT NOT NULL DEFAULT 'none';
CREATE INDEX subclouds_rehome_waiting ON subclouds(peer_group_id) WHERE rehome_status = 'waiting';

-- Which controllers may own a peer group, in priority order (1 = preferred), and how the
-- owner's copy of the group reached each of them.
CREATE TABLE peer_group_associations (
    id               INTEGER PRIMARY KEY,
    peer_group_id    INTEGER NOT NULL REFERENCES peer_groups(id) ON DELETE CASCADE,
    controller_id    INTEGER NOT NULL REFERENCES system_controllers(id),
    priority         INTEGER NOT NULL,
    association_type TEXT NOT NULL DEFAULT 'non-primary',
    sync_status      TEXT NOT NULL DEFAULT 'unknown',
    sync_message     TEXT NOT NULL DEFAULT '',
    synced_revision  INTEGER NOT NULL DEFAULT 0,
    synced_at        INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (peer_group_id, controller_id)
);

-- Every change of a peer group's owner, with the epoch it got and why.
CREATE TABLE peer_group_ownership (
    id              INTEGER PRIMARY KEY,
    peer_group_id   INTEGER NOT NULL REFERENCES peer_groups(id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    from_controller TEXT NOT NULL,
    to_controller   TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    actor           TEXT NOT NULL
);
CREATE INDEX peer_group_ownership_group ON peer_group_ownership(peer_group_id, at);

-- Alarms about controllers rather than sites (280.004 peer unreachable, capacity shortfall).
CREATE TABLE controller_alarms (
    id            INTEGER PRIMARY KEY,
    controller_id INTEGER NOT NULL REFERENCES system_controllers(id),
    alarm_id      TEXT NOT NULL,
    severity      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    raised_at     INTEGER NOT NULL,
    cleared_at    INTEGER
);
CREATE UNIQUE INDEX controller_alarms_active ON controller_alarms(controller_id, alarm_id) WHERE cleared_at IS NULL;
