-- Strategies follow their sites across controllers, PostgreSQL dialect.

-- The strategy's identity on every controller (local ids differ between stores).
ALTER TABLE strategies ADD COLUMN uuid TEXT;
UPDATE strategies SET uuid = md5(random()::text || id::text) WHERE uuid IS NULL;
CREATE UNIQUE INDEX strategies_uuid ON strategies(uuid);
-- The controller that created it and the one that runs it now ('' = this controller, without
-- geo-redundancy). A row run by another controller is a read-only secondary copy.
ALTER TABLE strategies ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE strategies ADD COLUMN run_by TEXT NOT NULL DEFAULT '';
-- Bumped each time another controller takes it over: the newest handover's copy wins.
ALTER TABLE strategies ADD COLUMN handover BIGINT NOT NULL DEFAULT 0;
-- One active strategy per type per creating controller: a strategy taken over from a failed
-- peer may run beside the survivor's own.
DROP INDEX strategies_one_active_per_type;
CREATE UNIQUE INDEX strategies_one_active_per_type ON strategies(strategy_type, origin)
    WHERE state NOT IN ('complete', 'aborted', 'failed');

-- Names one attempt of one step on every controller: an agent that already ran (or runs) the
-- command a new owner re-issues reports it instead of running it again.
ALTER TABLE subcloud_commands ADD COLUMN idempotency_key TEXT;
