-- reserve_many: take side effects' business keys, each for its own holder (an attempt), or say why not;
-- one key or several, in one round trip (EventStore.reserve is the one-key case).
-- KEYS: the reservations (once:<key>), one per side effect
-- ARGV: 1 how long a holder that crashed blocks others (s), then one holder per key, in KEYS' order
-- Returns one verdict per key, in order: 'acquired' (ours now, or still ours), 'done' (it already happened)
-- or 'busy' (someone else holds it). A key given twice is reserved for the first of its holders.
local out = {}
for i, key in ipairs(KEYS) do
  local holder = 'pending:' .. ARGV[i + 1]
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, holder, 'EX', ARGV[1])
    out[i] = 'acquired'
  elseif string.sub(v, 1, 5) == 'done:' then
    out[i] = 'done'
  elseif v == holder then
    redis.call('EXPIRE', key, ARGV[1])
    out[i] = 'acquired'
  else
    out[i] = 'busy'
  end
end
return out
