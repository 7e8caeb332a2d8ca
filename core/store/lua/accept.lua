-- accept: store one delivery, or count it as a duplicate of the event that claimed its dedup key.
-- KEYS: 1 dedup claim, 2 event document (ev), 3 raw body, 4 `all` index, 5 `st:queued` index, 6 outbox,
--       7 the broker queue's list (any key when ARGV[7] is empty)
-- ARGV: 1 key prefix, 2 new event id, 3 dedup window (s), 4 received_at, 5 outbox due time, 6 raw body,
--       7 Celery message to push onto KEYS[7] ('' for none), 8 dedup key, 9 source, 10 secret verdict,
--       11 kept headers (JSON)
-- Returns {1, new id} when stored, {0, the original's id} for a duplicate.
-- The new document's constant fields are written here, not sent: every argument is one more to pack,
-- send and parse on the intake's hot path.
local existing = redis.call('GET', KEYS[1])
if existing then
  local orig = ARGV[1] .. ':ev:' .. existing
  if redis.call('EXISTS', orig) == 1 then
    redis.call('HINCRBY', orig, 'duplicates', 1)
  else
    -- Settled and moved to the archive (or gone with its retention): the archiver's next pass counts it on
    -- the archived row (lua/take_duplicates.lua).
    redis.call('HINCRBY', ARGV[1] .. ':dup:late', existing, 1)
  end
  return {0, existing}
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'status', 'queued', 'event_type', '', 'received_at', ARGV[4],
  'updated_at', ARGV[4], 'dedup_key', ARGV[8], 'attempts', 0, 'duplicates', 0, 'source', ARGV[9],
  'secret', ARGV[10], 'headers', ARGV[11], 'size', #ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
if ARGV[7] ~= '' then redis.call('LPUSH', KEYS[7], ARGV[7]) end
return {1, ARGV[2]}
