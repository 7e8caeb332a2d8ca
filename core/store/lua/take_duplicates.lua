-- take_duplicates: the duplicate deliveries counted while their event was not in Redis ({p}:dup:late, by
-- accept.lua), taken out at once so that two archiver passes never count one twice. Those whose event is in
-- Redis again (restored for a replay meanwhile) are added to its document here; the rest are returned for
-- the archive's rows (the caller puts them back if it cannot write them).
-- KEYS: none (names are built from the prefix, as in forget.lua)
-- ARGV: 1 key prefix
-- Returns a flat list: id, count, id, count, ... of the events not in Redis.
local p = ARGV[1]
local late = p .. ':dup:late'
local got = redis.call('HGETALL', late)
if #got == 0 then return {} end
redis.call('DEL', late)
local out = {}
for i = 1, #got, 2 do
  local ev = p .. ':ev:' .. got[i]
  if redis.call('EXISTS', ev) == 1 then
    redis.call('HINCRBY', ev, 'duplicates', tonumber(got[i + 1]))
  else
    out[#out + 1] = got[i]
    out[#out + 1] = got[i + 1]
  end
end
return out
