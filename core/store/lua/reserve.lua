-- reserve: take a side effect's business key for one holder (an attempt), or say why not.
-- KEYS: 1 the reservation (once:<key>)
-- ARGV: 1 holder, 2 how long a holder that crashed blocks others (s)
-- Returns 'acquired' (ours now, or still ours), 'done' (it already happened) or 'busy' (someone else holds it).
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'pending:' .. ARGV[1], 'EX', ARGV[2])
  return 'acquired'
end
if string.sub(v, 1, 5) == 'done:' then return 'done' end
if v == 'pending:' .. ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 'acquired'
end
return 'busy'
