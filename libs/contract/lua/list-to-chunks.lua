--[[
  One step of making a file of a batch's output or error list in the Redis
  file store: moves up to ARGV[2] lines from the head of the list (KEYS[1])
  onto the end of a file being written in chunks (KEYS[2]; every chunk but
  the last exactly ARGV[1] bytes, as the store reads them), each line
  followed by a newline, and counts them in KEYS[3] (`bytes`, `lines`).
  Atomic, so each line is in exactly one of the two places whenever a
  process dies, and the lines never exist twice: the next step (of this run
  or of a retried one) goes on from where the last one ended.

  KEYS[1] the list, KEYS[2] the file's partial chunks, KEYS[3] the counts
  ARGV[1] chunk bytes, ARGV[2] lines per step, ARGV[3] seconds the partial
  and the counts are kept (they outlive an abandoned run)
  Returns the lines moved (0 once the list is empty), or the error
  `spool_missing` for an entry that is not a line (a line spooled to a
  directory by a process with MOA_FILES_DIR set).
]]
local lines = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #lines == 0 then
  return 0
end
local parts = {}
for _, line in ipairs(lines) do
  -- A line is a JSON object ('{' is 123), as isInlineEntry in file-store.ts says; anything else is a spool reference.
  if string.byte(line, 1) ~= 123 then
    return redis.error_reply('spool_missing')
  end
  parts[#parts + 1] = line
  parts[#parts + 1] = '\n'
end
local data = table.concat(parts)
local chunkBytes = tonumber(ARGV[1])
local offset = 1
if redis.call('EXISTS', KEYS[2]) == 1 then
  local last = redis.call('LINDEX', KEYS[2], -1)
  local room = chunkBytes - #last
  if room > 0 then
    redis.call('LSET', KEYS[2], -1, last .. string.sub(data, 1, room))
    offset = room + 1
  end
end
while offset <= #data do
  redis.call('RPUSH', KEYS[2], string.sub(data, offset, offset + chunkBytes - 1))
  offset = offset + chunkBytes
end
redis.call('LTRIM', KEYS[1], #lines, -1)
redis.call('HINCRBY', KEYS[3], 'bytes', #data)
redis.call('HINCRBY', KEYS[3], 'lines', #lines)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
return #lines
