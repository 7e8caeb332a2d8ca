-- withdraw_hand_off: undo a hand-off whose message could not be sent, so the next reconciler run hands the
-- event over again instead of waiting for a message that does not exist.
-- KEYS: 1 the event document (ev:<id>), 2 the outbox
-- ARGV: 1 event id, 2 the hand-off's message id, 3 now
-- Returns 1 if the hand-off was still the event's outstanding one and is withdrawn, else 0.
if redis.call('HGET', KEYS[1], 'handoff_id') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'handoff_id', 'handoff_at', 'handoff_queue')
redis.call('HINCRBY', KEYS[1], 'handoffs', -1)
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
return 1
