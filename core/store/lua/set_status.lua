-- set_status: move an event to a status, with what settles it, in one atomic step. Writes the actions'
-- states (and counts each attempt's outcome), records side effects as done, moves the status and type
-- indexes, sets document fields, schedules or removes the outbox entry, and starts the retention clock on
-- a terminal status. Reaching a terminal status is counted in {p}:metrics here too, so the counters cost no
-- extra round trip and add up across every worker: settled|<status>|<type label>, and on an event's first
-- settlement only (a replay of a week-old event says nothing about latency) latency|<le> and latency_sum.
-- And per minute for the console's chart: {p}:rate:<hour> field <minute>|<status> (hour and minute numbers
-- since the epoch), one hash per hour that expires after two days, so the keys stay bounded.
-- The type indexes and counters use the `type_label` field (schemas.event_types.label), never `event_type`:
-- a sender's made-up types all land in `other`.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, 2 event id, 3 new status, 4 now,
--       5 outbox: '' keep, '-' remove, else the due time,
--       6 ttl: '' none (persist), else seconds,
--       7 A = how many actions follow, 8 D = how many side effects follow,
--       then A triples (action name, state JSON, outcome to count or ''),
--       then D triples (business key, done value, seconds to keep),
--       then field/value pairs for the document.
-- Returns the previous status, or false for an unknown event.
local TERMINAL = {dead = true, ignored = true, invalid = true, processed = true}  -- core.states.TERMINAL
-- Upper bounds (s) of the received -> first final status histogram: core.store.LATENCY_BUCKETS.
local BUCKETS = {'0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '300', '900', '3600',
                 '21600', '86400'}
local p, id, new = ARGV[1], ARGV[2], ARGV[3]
local ev = p .. ':ev:' .. id
local old = redis.call('HGET', ev, 'status')
if not old then return false end
local n = 9
for _ = 1, tonumber(ARGV[7]) do
  redis.call('HSET', p .. ':act:' .. id, ARGV[n], ARGV[n + 1])
  if ARGV[n + 2] ~= '' then
    redis.call('HINCRBY', p .. ':metrics', 'action|' .. ARGV[n + 2] .. '|' .. ARGV[n], 1)
  end
  n = n + 3
end
for _ = 1, tonumber(ARGV[8]) do
  redis.call('SET', p .. ':once:' .. ARGV[n], ARGV[n + 1], 'EX', ARGV[n + 2])
  n = n + 3
end
local score = redis.call('HGET', ev, 'received_at')
if old ~= new then
  redis.call('ZREM', p .. ':st:' .. old, id)
  redis.call('ZADD', p .. ':st:' .. new, score, id)
end
redis.call('HSET', ev, 'status', new, 'updated_at', ARGV[4])
for i = n, #ARGV, 2 do
  redis.call('HSET', ev, ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'type_label' and ARGV[i + 1] ~= '' then
    redis.call('ZADD', p .. ':ty:' .. ARGV[i + 1], score, id)
    redis.call('SADD', p .. ':types', ARGV[i + 1])
  end
end
if TERMINAL[new] and old ~= new then
  local m = p .. ':metrics'
  local ty = redis.call('HGET', ev, 'type_label') or ''
  redis.call('HINCRBY', m, 'settled|' .. new .. '|' .. ty, 1)
  local t = tonumber(ARGV[4])
  local rate = p .. ':rate:' .. math.floor(t / 3600)
  redis.call('HINCRBY', rate, math.floor(t / 60) .. '|' .. new, 1)
  redis.call('EXPIRE', rate, 172800)
  if redis.call('HSETNX', ev, 'settled_at', ARGV[4]) == 1 then
    local lat = math.max(0, tonumber(ARGV[4]) - tonumber(score))
    local le = '+Inf'
    for _, b in ipairs(BUCKETS) do
      if lat <= tonumber(b) then le = b break end
    end
    redis.call('HINCRBY', m, 'latency|' .. le, 1)
    redis.call('HINCRBYFLOAT', m, 'latency_sum', tostring(lat))
  end
end
if ARGV[5] == '-' then
  redis.call('ZREM', p .. ':outbox', id)
elseif ARGV[5] ~= '' then
  redis.call('ZADD', p .. ':outbox', ARGV[5], id)
end
local keys = {ev, p .. ':raw:' .. id, p .. ':act:' .. id}
for _, k in ipairs(keys) do
  if ARGV[6] == '' then redis.call('PERSIST', k) else redis.call('EXPIRE', k, ARGV[6]) end
end
return old
