-- claim_due: claim the outbox entries that are due, pushing each one's due time a lease forward, so
-- concurrent reconcilers never hand out the same entry twice.
-- KEYS: 1 outbox
-- ARGV: 1 now, 2 lease (s), 3 at most this many
-- Returns the claimed event ids.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], id)
end
return ids
