-- release: give up a reservation we hold (the side effect failed and will be retried).
-- KEYS: 1 the reservation (once:<key>)
-- ARGV: 1 holder
-- Returns 1 if it was ours and is gone, else 0.
if redis.call('GET', KEYS[1]) == 'pending:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
