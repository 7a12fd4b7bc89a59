--[[
  Takes one token from a bucket (the per-tenant request rate limit).

  KEYS[1]  the bucket: a hash of `tokens` and `ts` (milliseconds of Redis time)
  ARGV[1]  capacity: the most requests at once (the per-minute limit)
  ARGV[2]  refill rate in tokens per millisecond

  Returns { allowed (1|0), remaining tokens (whole), retry after ms (0 when allowed),
            ms until the bucket is full again }.

  Redis' own clock is used so that every API replica agrees on time.
]]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local last = tonumber(state[2]) or now
if now > last then
  tokens = math.min(capacity, tokens + (now - last) * rate)
end

local allowed = 0
local retryAfter = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retryAfter = math.ceil((1 - tokens) / rate)
end

local untilFull = math.ceil((capacity - tokens) / rate)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], untilFull + 1000)
return { allowed, math.floor(tokens), retryAfter, untilFull }
