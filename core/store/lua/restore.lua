-- restore: bring an archived event back into Redis as it was when archived (to replay it), with its index
-- entries and the retention of its status. Never over a copy that is there: the hot tier wins.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, 2 event id, 3 raw body, 4 ttl (s), 5 A = how many action (name, state) pairs follow,
--       then A pairs, then the document's field/value pairs
-- Returns 1 when restored, 0 when the event was in Redis already.
local p, id = ARGV[1], ARGV[2]
local ev = p .. ':ev:' .. id
if redis.call('EXISTS', ev) == 1 then return 0 end
local n = 6 + 2 * tonumber(ARGV[5])
redis.call('HSET', ev, unpack(ARGV, n))
redis.call('SET', p .. ':raw:' .. id, ARGV[3], 'EX', ARGV[4])
if tonumber(ARGV[5]) > 0 then
  redis.call('HSET', p .. ':act:' .. id, unpack(ARGV, 6, n - 1))
  redis.call('EXPIRE', p .. ':act:' .. id, ARGV[4])
end
redis.call('EXPIRE', ev, ARGV[4])
local f = redis.call('HMGET', ev, 'received_at', 'status', 'type_label')
redis.call('ZADD', p .. ':all', f[1], id)
redis.call('ZADD', p .. ':st:' .. f[2], f[1], id)
if f[3] and f[3] ~= '' then
  redis.call('ZADD', p .. ':ty:' .. f[3], f[1], id)
  redis.call('SADD', p .. ':types', f[3])
end
return 1
