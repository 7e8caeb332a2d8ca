-- hand_over: the reconciler's claim. Hand the due entries of the outbox to workers, never more than one
-- outstanding reconciler message per event, and a lost message again once its queue shows it is lost.
-- An event's outstanding message is the reconciler's last hand-off that no worker has started yet
-- (`handoff_id`, `handoff_at`, `handoff_queue` on the event; begin.lua deletes them), or else, for a `queued`
-- event, the message it was queued with, sent at `updated_at` (the intake's on the live queue, a replay's on
-- the replay queue). That message is lost when it is older than a lease and its queue is empty, or a worker
-- has started a message sent on that queue at least a lease after it (`{p}:started:<queue>`, kept by
-- begin.lua): queues are first in, first out, so it would have been started by then. A message not lost is
-- waited for: the event is looked at again half a lease later. Every other due event (a worker started it
-- and was not heard of for a lease, or an action's retry is due) is handed over. Entries of finished or
-- expired events are dropped.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, 2 now, 3 lease (s), 4 at most this many entries, 5 message id stem ("rc-<ms>-<hex>"),
--       6 live queue, 7 its length, 8 replay queue, 9 its length (a length of -1: unknown, not empty)
-- Returns {hand-offs, waiting, seen}: hand-offs a flat list of (event id, message id, queue) triples to send;
-- waiting how many due events were left alone because their message is still out; seen how many due entries
-- were looked at (fewer than ARGV 4: none are left due).
local p, now, lease, stem = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5]
local LIVE, REPLAY = ARGV[6], ARGV[8]
local length = {[ARGV[6]] = tonumber(ARGV[7]), [ARGV[8]] = tonumber(ARGV[9])}
local TERMINAL = {dead = true, ignored = true, invalid = true, processed = true}
local outbox = p .. ':outbox'
local started = {}

local function started_until(queue)
  if started[queue] == nil then
    started[queue] = tonumber(redis.call('GET', p .. ':started:' .. queue) or '0')
  end
  return started[queue]
end

local out, waiting = {}, 0
local ids = redis.call('ZRANGEBYSCORE', outbox, '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
for i, id in ipairs(ids) do
  local ev = p .. ':ev:' .. id
  local f = redis.call('HMGET', ev, 'status', 'updated_at', 'reason', 'handoff_id', 'handoff_at',
                       'handoff_queue')
  local status, replayed = f[1], f[3] == 'replay'
  if not status or TERMINAL[status] then
    redis.call('ZREM', outbox, id)
  else
    local sent, queue
    if f[4] then
      sent, queue = tonumber(f[5]), f[6]
    elseif status == 'queued' then
      sent, queue = tonumber(f[2]), replayed and REPLAY or LIVE
    end
    if sent and not (now - sent >= lease and (length[queue] == 0 or started_until(queue) >= sent + lease)) then
      waiting = waiting + 1
      redis.call('ZADD', outbox, now + lease / 2, id)
    else
      -- A delivery never started stays a live one; restarts and retries go to the replay queue.
      local target = (status == 'queued' and not replayed) and LIVE or REPLAY
      local mid = stem .. '-' .. i
      redis.call('HSET', ev, 'handoff_id', mid, 'handoff_at', ARGV[2], 'handoff_queue', target)
      redis.call('HINCRBY', ev, 'handoffs', 1)
      redis.call('HINCRBY', p .. ':metrics', 'reconciler|handed_over', 1)
      redis.call('ZADD', outbox, now + lease, id)
      out[#out + 1] = id
      out[#out + 1] = mid
      out[#out + 1] = target
    end
  end
end
return {out, waiting, #ids}
