-- begin: a worker starts an event. Read it all (document fields, raw body, action states) and, unless it is
-- finished or has been started too often without finishing, move it to `processing` with the outbox a lease
-- ahead (if the worker dies, the reconciler hands the event over again then). One round trip for both.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, 2 event id, 3 now, 4 outbox due time (now + lease), 5 most unfinished starts allowed
-- Returns false for an unknown event, else {status before, source, received_at, event_type, attempts,
-- unfinished starts, raw body, action states as a flat name/JSON list, 1 if started now else 0}.
local TERMINAL = {dead = true, ignored = true, invalid = true, processed = true}  -- core.states.TERMINAL
local p, id = ARGV[1], ARGV[2]
local ev = p .. ':ev:' .. id
local f = redis.call('HMGET', ev, 'status', 'source', 'received_at', 'event_type', 'attempts',
                     'unfinished_starts')
local raw = redis.call('GET', p .. ':raw:' .. id)
if not f[1] or not raw then return false end
local acts = redis.call('HGETALL', p .. ':act:' .. id)
local attempts, unfinished = tonumber(f[5] or 0), tonumber(f[6] or 0)
if TERMINAL[f[1]] or unfinished >= tonumber(ARGV[5]) then
  return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 0}
end
if f[1] ~= 'processing' then
  redis.call('ZREM', p .. ':st:' .. f[1], id)
  redis.call('ZADD', p .. ':st:processing', f[3], id)
end
redis.call('HSET', ev, 'status', 'processing', 'updated_at', ARGV[3], 'attempts', attempts + 1,
           'unfinished_starts', unfinished + 1)
redis.call('ZADD', p .. ':outbox', ARGV[4], id)
return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 1}
