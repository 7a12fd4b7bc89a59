--[[
  Writes a request's progress (the `progress` field of its orchestrator job)
  and, once the request has ended, drops the results BullMQ copied from its
  completed calls into the job's `:processed` hash: the layers in the
  progress hold them now, so each answer stays stored once. (The `:failed`
  hash stays: it holds only failure reasons, and it is how removing the
  request finds its failed call jobs, which are kept a day.)

  Unlike BullMQ's updateProgress it adds no `progress` event to the queue's
  events stream: nothing reads those, and each one would be one more copy of
  every answer so far.

  KEYS[1] the job hash, KEYS[2] its :processed hash
  ARGV[1] the progress as JSON
  ARGV[2] '1' when the request has ended, else '0'
  Returns 1, or 0 when the job no longer exists (then nothing is written).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
end
return 1
