-- mark_late: flag an event as a late delivery, counting it once however often it is processed or replayed.
-- KEYS: 1 the event document (ev:<id>), 2 the worker counters ({p}:metrics)
-- ARGV: none
-- Returns 1 the first time (flagged and counted now), else 0 (already flagged, or no such event).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'late', '1') == 1 then
  redis.call('HINCRBY', KEYS[2], 'late', 1)
  return 1
end
return 0
