-- compact: without an archive, replace settled events' bodies with their compressed form (recorded as the
-- document's `raw_codec`), each only if the event is unchanged since its body was read and not compacted
-- yet. The body keeps its TTL (the event's retention).
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, 2 codec name, then per event: id, status, updated_at, compressed body
-- Returns how many bodies were replaced.
local p, codec = ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  local ev = p .. ':ev:' .. id
  local f = redis.call('HMGET', ev, 'status', 'updated_at', 'raw_codec')
  if f[1] == ARGV[i + 1] and f[2] == ARGV[i + 2] and not f[3] and redis.call('EXISTS', p .. ':raw:' .. id) == 1 then
    redis.call('SET', p .. ':raw:' .. id, ARGV[i + 3], 'KEEPTTL')
    redis.call('HSET', ev, 'raw_codec', codec)
    n = n + 1
  end
end
return n
