package mirror

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// writeScript writes one job in one atomic step. Redis runs a script without interleaving other
// commands, so a reader never sees a hash without its set entry or the other way round.
//
//	KEYS[1] job hash, KEYS[2] completed set, KEYS[3] failed set, KEYS[4] events stream
//	ARGV[1] job id, ARGV[2] event seq, ARGV[3] mode, ARGV[4] "1" to remove the job's hash and set
//	entries first (a requeued job), ARGV[5] hash TTL ms, ARGV[6] finishedOn ms, ARGV[7] max count,
//	ARGV[8] events max length, ARGV[9] job key prefix, ARGV[10] n, ARGV[11..10+2n] hash field/value
//	pairs, the rest the events stream entry's field/value pairs (none: no entry).
//
// It returns 0 when the hash already holds this sequence or a newer one (the write is skipped), 1 when
// it wrote. Commands run (INFO commandstats counts each): HGET, then per mode
//
//	update:           HSET PEXPIRE [XADD]
//	completed/failed: HSET PEXPIRE ZADD ZREVRANGE [DEL ZREMRANGEBYRANK when over max count] XADD
//	drop:             DEL ZREM ZREM XADD
//
// plus DEL ZREM ZREM when ARGV[4] is "1".
var writeScript = redis.NewScript(writeSrc)

const writeSrc = `
local id, mode = ARGV[1], ARGV[3]
local last = redis.call("HGET", KEYS[1], "` + seqField + `")
if last and tonumber(last) >= tonumber(ARGV[2]) then
  return 0
end
if ARGV[4] == "1" or mode == "drop" then
  redis.call("DEL", KEYS[1])
  redis.call("ZREM", KEYS[2], id)
  redis.call("ZREM", KEYS[3], id)
end
local n = tonumber(ARGV[10])
local ev = 11 + 2 * n
if mode ~= "drop" then
  local f = {}
  for i = 11, ev - 1 do
    f[#f + 1] = ARGV[i]
  end
  f[#f + 1] = "` + seqField + `"
  f[#f + 1] = ARGV[2]
  redis.call("HSET", KEYS[1], unpack(f))
  redis.call("PEXPIRE", KEYS[1], ARGV[5])
end
if mode == "completed" or mode == "failed" then
  local set = KEYS[2]
  if mode == "failed" then
    set = KEYS[3]
  end
  redis.call("ZADD", set, ARGV[6], id)
  local max = tonumber(ARGV[7])
  local extra = redis.call("ZREVRANGE", set, max, -1)
  if #extra > 0 then
    local dels = {}
    for i, x in ipairs(extra) do
      dels[i] = ARGV[9] .. x
    end
    redis.call("DEL", unpack(dels))
    redis.call("ZREMRANGEBYRANK", set, 0, -(max + 1))
  end
end
if #ARGV >= ev then
  local e = {}
  for i = ev, #ARGV do
    e[#e + 1] = ARGV[i]
  end
  redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[8], "*", unpack(e))
end
return 1
`

// sweepLimit bounds the ids one sweep removes per set (Lua's unpack has a stack limit).
const sweepLimit = 1000

// sweepScript removes the finished jobs older than a cutoff: set entry and hash together.
//
//	KEYS[1] completed set, KEYS[2] failed set
//	ARGV[1] cutoff (finishedOn ms), ARGV[2] job key prefix, ARGV[3] limit per set
//
// It returns {oldest remaining finishedOn or "-1", 1 if a set had more than limit expired ids}.
// Commands run: per set ZRANGEBYSCORE ZRANGE, plus DEL ZREM when something expired.
var sweepScript = redis.NewScript(sweepSrc)

const sweepSrc = `
local oldest, oldestScore, more = "-1", nil, 0
for k = 1, 2 do
  local ids = redis.call("ZRANGEBYSCORE", KEYS[k], "-inf", ARGV[1], "LIMIT", 0, ARGV[3])
  if #ids > 0 then
    local dels = {}
    for i, id in ipairs(ids) do
      dels[i] = ARGV[2] .. id
    end
    redis.call("DEL", unpack(dels))
    redis.call("ZREM", KEYS[k], unpack(ids))
    if #ids >= tonumber(ARGV[3]) then
      more = 1
    end
  end
  local first = redis.call("ZRANGE", KEYS[k], 0, 0, "WITHSCORES")
  if #first == 2 then
    local s = tonumber(first[2])
    if oldestScore == nil or s < oldestScore then
      oldest, oldestScore = first[2], s
    end
  end
end
return {oldest, more}
`

// scriptArgs returns writeScript's KEYS and ARGV for w.
func (w *write) scriptArgs(k keys, maxCount int, eventsMaxLen int64) ([]string, []any) {
	f := "0"
	if w.fresh {
		f = "1"
	}
	args := make([]any, 0, 10+len(w.fields)+len(w.event))
	args = append(args,
		w.jobID,
		strconv.FormatUint(w.seq, 10),
		string(w.mode),
		f,
		strconv.FormatInt(max(w.ttl.Milliseconds(), 1), 10),
		strconv.FormatInt(w.finishedOn, 10),
		strconv.Itoa(maxCount),
		strconv.FormatInt(eventsMaxLen, 10),
		k.prefix,
		strconv.Itoa(len(w.fields)/2),
	)
	args = append(args, w.fields...)
	args = append(args, w.event...)
	return []string{w.key, k.completed, k.failed, k.events}, args
}
