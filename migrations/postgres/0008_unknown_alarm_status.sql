-- A subcloud whose agent does not observe its platform has the alarm roll-up `unknown`, ranked
-- between `degraded` and `OK` for worst-first sorting: the ranks above `OK` move up by one
-- (critical 3 -> 4, degraded 2 -> 3; unknown is 2).
UPDATE subclouds SET alarm_rank = alarm_rank + 1 WHERE alarm_rank >= 2;
