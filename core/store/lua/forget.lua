-- forget: delete archived events from Redis (document, body, actions, index and outbox entries), each only
-- if it is unchanged since it was read for archiving: a replay, a retry or a duplicate delivery in between
-- changes its status, updated_at or duplicates, and it stays (its next archiving updates the row).
-- The dedup claim, side-effect reservations and counters are not the event's keys: they stay.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, then per event: id, status, updated_at, duplicates ('0' when absent), as read
-- Returns the ids deleted.
local p = ARGV[1]
local out = {}
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  local ev = p .. ':ev:' .. id
  local f = redis.call('HMGET', ev, 'status', 'updated_at', 'duplicates', 'type_label')
  if f[1] and f[1] == ARGV[i + 1] and f[2] == ARGV[i + 2] and (f[3] or '0') == ARGV[i + 3] then
    redis.call('DEL', ev, p .. ':raw:' .. id, p .. ':act:' .. id)
    redis.call('ZREM', p .. ':all', id)
    redis.call('ZREM', p .. ':st:' .. f[1], id)
    if f[4] and f[4] ~= '' then redis.call('ZREM', p .. ':ty:' .. f[4], id) end
    redis.call('ZREM', p .. ':outbox', id)
    out[#out + 1] = id
  end
end
if #out > 0 then redis.call('HINCRBY', p .. ':metrics', 'archive|moved', #out) end
return out
