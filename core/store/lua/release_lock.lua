-- release_lock: give up a lock only if it is still ours (a runner that outlived its lock must not free the
-- next holder's).
-- KEYS: 1 the lock
-- ARGV: 1 our token
-- Returns 1 if it was ours and is gone, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
