-- expand: put a compacted body back as received (an event about to run again: workers read plain bodies).
-- KEYS: 1 the event document (ev:<id>), 2 its body (raw:<id>)
-- ARGV: 1 the codec the body was compacted with, 2 the body as received
-- Returns 1 when the body was replaced, 0 when it was not compacted (with that codec).
if redis.call('HGET', KEYS[1], 'raw_codec') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
redis.call('HDEL', KEYS[1], 'raw_codec')
return 1
