-- accept: store one delivery, or count it as a duplicate of the event that claimed its dedup key.
-- KEYS: 1 dedup claim, 2 event document (ev), 3 raw body, 4 `all` index, 5 `st:queued` index, 6 outbox,
--       7 the broker queue's list (any key when ARGV[7] is empty)
-- ARGV: 1 key prefix, 2 new event id, 3 dedup window (s), 4 received_at, 5 outbox due time, 6 raw body,
--       7 Celery message to push onto KEYS[7] ('' for none), 8.. the document's field/value pairs
-- Returns {1, new id} when stored, {0, the original's id} for a duplicate.
local existing = redis.call('GET', KEYS[1])
if existing then
  local orig = ARGV[1] .. ':ev:' .. existing
  if redis.call('EXISTS', orig) == 1 then
    redis.call('HINCRBY', orig, 'duplicates', 1)
  end
  return {0, existing}
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[2], unpack(ARGV, 8))
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
if ARGV[7] ~= '' then redis.call('LPUSH', KEYS[7], ARGV[7]) end
return {1, ARGV[2]}
