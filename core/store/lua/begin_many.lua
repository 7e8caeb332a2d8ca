-- begin_many: a worker starts a batch of events, each as begin used to start one. For each: read it all
-- (document fields, raw body, action states) and, unless it is finished or has been started too often without
-- finishing, move it to `processing` with the outbox a lease ahead (if the worker dies, the reconciler hands
-- the event over again then). One round trip for the whole batch; a batch of one is how a single event starts.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- It also keeps what hand_over.lua reads: per queue, the latest send time of a message a worker started from
-- it, and whether the event's hand-off is still out (deleted when the event starts).
-- ARGV: 1 key prefix, 2 now, 3 outbox due time (now + lease), 4 most unfinished starts allowed,
--       then one triple per event: the event id, the message's id, the queue it came from ("" if unknown)
-- Returns one entry per event, in order: 0 for an unknown event, else {status before, source, received_at,
-- event_type, attempts, unfinished starts, raw body, action states as a flat name/JSON list, verdict}: verdict
-- 1 started now, 0 refused (finished, or too many starts), 2 superseded (a reconciler message, "rc-<ms>-...",
-- that is not the event's outstanding hand-off: one it replaced, or made redundant by a start since; the
-- outbox still holds the event, so dropping it is safe).
local TERMINAL = {dead = true, ignored = true, invalid = true, processed = true}  -- core.states.TERMINAL
local p, now, due, max_starts = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local function begin(id, message, queue)
  local ev = p .. ':ev:' .. id
  local f = redis.call('HMGET', ev, 'status', 'source', 'received_at', 'event_type', 'attempts',
                       'unfinished_starts', 'updated_at', 'handoff_id')
  local raw = redis.call('GET', p .. ':raw:' .. id)
  if not f[1] or not raw then return 0 end
  local acts = redis.call('HGETALL', p .. ':act:' .. id)
  local attempts, unfinished = tonumber(f[5] or 0), tonumber(f[6] or 0)
  -- When this message was sent: a reconciler's says so in its id; a queued event's was sent when it was queued.
  local ms = string.match(message, '^rc%-(%d+)%-')
  local sent = ms and tonumber(ms) / 1000 or (f[1] == 'queued' and tonumber(f[7])) or nil
  if sent and queue ~= '' then
    local mark = p .. ':started:' .. queue
    if sent > tonumber(redis.call('GET', mark) or '0') then redis.call('SET', mark, tostring(sent)) end
  end
  if TERMINAL[f[1]] or unfinished >= max_starts then
    return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 0}
  end
  if ms and message ~= f[8] then
    return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 2}
  end
  redis.call('HDEL', ev, 'handoff_id', 'handoff_at', 'handoff_queue')
  if f[1] ~= 'processing' then
    redis.call('ZREM', p .. ':st:' .. f[1], id)
    redis.call('ZADD', p .. ':st:processing', f[3], id)
  end
  redis.call('HSET', ev, 'status', 'processing', 'updated_at', now, 'attempts', attempts + 1,
             'unfinished_starts', unfinished + 1)
  redis.call('ZADD', p .. ':outbox', due, id)
  return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 1}
end

local out = {}
for i = 5, #ARGV, 3 do
  out[#out + 1] = begin(ARGV[i], ARGV[i + 1] or '', ARGV[i + 2] or '')
end
return out
