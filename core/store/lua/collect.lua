-- collect: read settled events whole for the archive, in one round trip, each as one JSON document.
-- Only events still in `status` whose last change (updated_at) is at or before the horizon are returned:
-- one settled recently (a long retry), changed since the index said so, or expired meanwhile is left out.
-- The document is {"fields": <the {p}:ev:<id> hash>, "actions": <the {p}:act:<id> hash>}, encoded here so
-- the archiver neither parses ~20 bulk replies per event nor encodes them again (every field is a string
-- our code wrote: the JSON decodes to exactly the hashes; cjson writes "/" as "\/", which JSON allows).
-- A compacted body's codec (the raw_codec field) is taken out of the fields and returned beside the body.
-- KEYS: none (names are built from the prefix: a single Redis node or Sentinel, not Cluster)
-- ARGV: 1 key prefix, 2 status, 3 horizon (epoch seconds), then event ids
-- Returns, per event collected: id, document JSON, raw body, body codec ('' when stored as received).
local p = ARGV[1]
local status = ARGV[2]
local horizon = tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local flat = redis.call('HGETALL', p .. ':ev:' .. id)
  local raw = redis.call('GET', p .. ':raw:' .. id)
  if #flat > 0 and raw then
    local fields = {}
    for k = 1, #flat, 2 do fields[flat[k]] = flat[k + 1] end
    if fields['status'] == status and (tonumber(fields['updated_at']) or 0) <= horizon then
      local codec = fields['raw_codec'] or ''
      fields['raw_codec'] = nil
      local acts = redis.call('HGETALL', p .. ':act:' .. id)
      local actions = {}
      for k = 1, #acts, 2 do actions[acts[k]] = acts[k + 1] end
      out[#out + 1] = id
      out[#out + 1] = cjson.encode({fields = fields, actions = actions})
      out[#out + 1] = raw
      out[#out + 1] = codec
    end
  end
end
return out
