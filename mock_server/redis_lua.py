"""The Redis store's Lua scripts: each store operation is one script, so each is atomic.

Every script gets ``KEYS[1]`` = ``<prefix>:epoch`` and ``ARGV[1]`` = ``<prefix>``, and finds the
current epoch's keys (``<prefix>:<epoch>:...``) itself: a reset (a new epoch) is therefore atomic
with respect to every other operation. Keys are built inside the scripts, so the store needs a
single Redis server, not a cluster. Numbers that a script computes are written with 17
significant digits (Lua's ``tostring`` keeps 14), and returned as strings (Redis would truncate a
Lua number to an integer).
"""

from __future__ import annotations

PRELUDE = r"""
local E = redis.call('GET', KEYS[1])
local P = ARGV[1] .. ':' .. (E or '0') .. ':'
local function num(x) return string.format('%.17g', x) end
local function need_epoch()
  if not E or redis.call('EXISTS', P .. 'head') == 0 then
    return redis.error_reply('KLING_NO_STATE')
  end
end
"""

FRESH = r"""
local function write_fresh(i)
  redis.call('HSET', P .. 'head', 'base', ARGV[i], 'anchor', ARGV[i + 1], 'scale', ARGV[i + 2],
    'origin', ARGV[i], 'cv', 1, 'rv', 1, 'url_key', ARGV[i + 5])
  redis.call('SET', P .. 'config', ARGV[i + 3])
  redis.call('SET', P .. 'rules', ARGV[i + 4])
end
"""

SCRIPTS: dict[str, str] = {
    # ARGV: prefix, base, anchor, scale, config, rules, url_key
    "start": FRESH
    + r"""
if E and redis.call('EXISTS', P .. 'head') == 1 then return 0 end
E = tostring(redis.call('INCR', KEYS[1]))
P = ARGV[1] .. ':' .. E .. ':'
write_fresh(2)
return 1
""",
    "reset": FRESH
    + r"""
local old = E or '0'
E = tostring(redis.call('INCR', KEYS[1]))
P = ARGV[1] .. ':' .. E .. ':'
write_fresh(2)
return old
""",
    "head": r"""
local e = need_epoch() if e then return e end
local h = redis.call('HMGET', P .. 'head', 'base', 'anchor', 'scale', 'origin', 'cv', 'rv',
  'url_key')
local task = false
if ARGV[2] then task = redis.call('HGET', P .. 'tasks', ARGV[2]) end
return {E, h[1], h[2], h[3], h[4], h[5], h[6], h[7], task}
""",
    # ARGV: prefix, seconds
    "advance": r"""
local e = need_epoch() if e then return e end
redis.call('HINCRBYFLOAT', P .. 'head', 'base', ARGV[2])
return redis.call('HMGET', P .. 'head', 'base', 'anchor', 'scale')
""",
    "config": r"""
local e = need_epoch() if e then return e end
return {redis.call('HGET', P .. 'head', 'cv'), redis.call('GET', P .. 'config')}
""",
    # ARGV: prefix, version, config, scale, wall
    "put_config": r"""
local e = need_epoch() if e then return e end
local h = redis.call('HMGET', P .. 'head', 'cv', 'base', 'anchor', 'scale')
if h[1] ~= ARGV[2] then return 0 end
local scale = tonumber(h[4])
local now = tonumber(h[2])
if scale ~= 0 then now = now + (tonumber(ARGV[5]) - tonumber(h[3])) * scale end
redis.call('HSET', P .. 'head', 'base', num(now), 'anchor', ARGV[5], 'scale', ARGV[4])
redis.call('HINCRBY', P .. 'head', 'cv', 1)
redis.call('SET', P .. 'config', ARGV[3])
return 1
""",
    # ARGV: prefix, counter, count
    "take": r"""
local e = need_epoch() if e then return e end
return redis.call('HINCRBY', P .. 'ctr', ARGV[2], ARGV[3]) - tonumber(ARGV[3])
""",
    # ARGV: prefix, json head, task id, account, family, external ('' none), kind, slots,
    # cost (milli), succeeds (1/0), ends_at, slot limit ('' none), now, max_tasks ('' none),
    # then per pack, soonest-expiring first: id, kind, total (milli), effective_at, invalid_at
    "create": r"""
local e = need_epoch() if e then return e end
local id, account, family, ext, kind = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local slots, cost, succ, ends = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10], ARGV[11]
local now = tonumber(ARGV[13])
local owner = account .. '\0' .. kind
if ext ~= '' and redis.call('HEXISTS', P .. 'ext', account .. '\0' .. ext) == 1 then
  return {'external'}
end
local rk = P .. 'run:' .. owner
local ended = redis.call('ZRANGEBYSCORE', rk, '-inf', ARGV[13])
if #ended > 0 then
  local freed = 0
  for _, m in ipairs(ended) do freed = freed + tonumber(string.match(m, '|(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', rk, '-inf', ARGV[13])
  redis.call('HINCRBY', P .. 'runsum', owner, -freed)
end
local in_use = tonumber(redis.call('HGET', P .. 'runsum', owner) or '0')
if ARGV[12] ~= '' and in_use + slots > tonumber(ARGV[12]) then
  return {'slots', redis.call('ZRANGE', rk, 0, -1, 'WITHSCORES')}
end
local chosen = nil
local i = 15
while ARGV[i] do
  local pid, pkind, total = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local pk = P .. 'pk:' .. pid
  local done = redis.call('ZRANGEBYSCORE', pk, '-inf', ARGV[13])
  if #done > 0 then
    local back, kept = 0, 0
    for _, m in ipairs(done) do
      local c, s = string.match(m, '|(%d+)|(%d)$')
      back = back + tonumber(c)
      if s == '1' then kept = kept + tonumber(c) end
    end
    redis.call('ZREMRANGEBYSCORE', pk, '-inf', ARGV[13])
    redis.call('HINCRBY', P .. 'pks', pid .. ':r', -back)
    redis.call('HINCRBY', P .. 'pks', pid .. ':s', kept)
  end
  if pkind == kind and tonumber(ARGV[i + 3]) <= now and now < tonumber(ARGV[i + 4]) then
    local u = redis.call('HMGET', P .. 'pks', pid .. ':r', pid .. ':s')
    local left = math.max(0, total - tonumber(u[2] or '0')) - tonumber(u[1] or '0')
    if left >= cost then chosen = pid break end
  end
  i = i + 5
end
if not chosen then return {'units'} end
redis.call('HSET', P .. 'tasks', id, ARGV[2] .. '"' .. chosen .. '"}')
local order = redis.call('HINCRBY', P .. 'ctr', 'order', 1)
redis.call('ZADD', P .. 'all', order, id)
redis.call('ZADD', P .. 'own:' .. account .. '\0' .. family, order, id)
if ext ~= '' then redis.call('HSET', P .. 'ext', account .. '\0' .. ext, id) end
redis.call('ZADD', rk, ends, id .. '|' .. slots)
redis.call('HINCRBY', P .. 'runsum', owner, slots)
redis.call('ZADD', P .. 'pk:' .. chosen, ends, id .. '|' .. cost .. '|' .. succ)
redis.call('HINCRBY', P .. 'pks', chosen .. ':r', cost)
redis.call('HINCRBY', P .. 'tallies', account .. '\0tasks_created', 1)
if ARGV[14] ~= '' then
  local limit = tonumber(ARGV[14])
  local count = redis.call('HLEN', P .. 'tasks')
  if count > limit then
    local goal = count - math.max(1, math.floor(limit * 9 / 10))
    local gone = 0
    local start = 0
    while gone < goal do
      local ids = redis.call('ZRANGE', P .. 'all', start, start + 499)
      if #ids == 0 then break end
      start = start + 500
      for _, old in ipairs(ids) do
        if gone >= goal then break end
        local t = cjson.decode(redis.call('HGET', P .. 'tasks', old))
        local run = t['run_s']
        if run ~= cjson.null and t['created_at'] + t['queued_s'] + run <= now then
          redis.call('HDEL', P .. 'tasks', old)
          redis.call('ZREM', P .. 'all', old)
          redis.call('ZREM', P .. 'own:' .. t['account'] .. '\0' .. t['family'], old)
          local x = t['params']['external_task_id']
          if x and x ~= cjson.null then
            redis.call('HDEL', P .. 'ext', t['account'] .. '\0' .. x)
          end
          gone = gone + 1
          start = start - 1
        end
      end
    end
  end
end
return {'ok', chosen}
""",
    # ARGV: prefix, task id
    "get": r"""
local e = need_epoch() if e then return e end
return redis.call('HGET', P .. 'tasks', ARGV[2])
""",
    # ARGV: prefix, account, external id
    "by_external": r"""
local e = need_epoch() if e then return e end
local id = redis.call('HGET', P .. 'ext', ARGV[2] .. '\0' .. ARGV[3])
if not id then return false end
return redis.call('HGET', P .. 'tasks', id)
""",
    # ARGV: prefix, index key suffix ('all' or 'own:<account>\0<family>'), first, last (newest
    # first ranks)
    "range": r"""
local e = need_epoch() if e then return e end
local ids = redis.call('ZREVRANGE', P .. ARGV[2], ARGV[3], ARGV[4])
if #ids == 0 then return {} end
return redis.call('HMGET', P .. 'tasks', unpack(ids))
""",
    "count": r"""
local e = need_epoch() if e then return e end
return redis.call('HLEN', P .. 'tasks')
""",
    # ARGV: prefix, account\0kind, now
    "running": r"""
local e = need_epoch() if e then return e end
return redis.call('ZRANGEBYSCORE', P .. 'run:' .. ARGV[2], '(' .. ARGV[3], '+inf', 'WITHSCORES')
""",
    # ARGV: prefix, pack id, now
    "pack_usage": r"""
local e = need_epoch() if e then return e end
local u = redis.call('HMGET', P .. 'pks', ARGV[2] .. ':r', ARGV[2] .. ':s')
return {u[1] or '0', u[2] or '0', redis.call('ZRANGEBYSCORE', P .. 'pk:' .. ARGV[2], '-inf',
  ARGV[3])}
""",
    # ARGV: prefix, account, now, limit, window
    "admit": r"""
local e = need_epoch() if e then return e end
local key = P .. 'win:' .. ARGV[2]
local now, limit, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
while true do
  local head = redis.call('LINDEX', key, 0)
  if not head or tonumber(head) > now - window then break end
  redis.call('LPOP', key)
end
if redis.call('LLEN', key) >= limit then
  return num(tonumber(redis.call('LINDEX', key, 0)) + window - now)
end
redis.call('RPUSH', key, ARGV[3])
return false
""",
    # ARGV: prefix, account\0key, now, hold, max gates
    "gate": r"""
local e = need_epoch() if e then return e end
local now = tonumber(ARGV[3])
local seen = redis.call('HGET', P .. 'gates', ARGV[2])
if seen then
  if seen == 'spent' or now >= tonumber(seen) then
    redis.call('HSET', P .. 'gates', ARGV[2], 'spent')
    return false
  end
  return seen
end
local release = num(now + tonumber(ARGV[4]))
redis.call('HSET', P .. 'gates', ARGV[2], release)
redis.call('RPUSH', P .. 'gate_order', ARGV[2])
if redis.call('LLEN', P .. 'gate_order') > tonumber(ARGV[5]) then
  redis.call('HDEL', P .. 'gates', redis.call('LPOP', P .. 'gate_order'))
end
return release
""",
    "gate_count": r"""
local e = need_epoch() if e then return e end
return redis.call('HLEN', P .. 'gates')
""",
    # ARGV: prefix, entry, capacity, then, for a request to judge: the audit (JSON: the fields
    # of mock_server.audit.Audit that are set, and the limits), the evidence prefix (JSON
    # without the detail's value and the closing brace)
    "record": r"""
local e = need_epoch() if e then return e end
if ARGV[4] then
  local a = cjson.decode(ARGV[4])
  local acct, now = a.account, a.now
  local function find(fid, detail)
    local field = acct .. '\0' .. fid
    redis.call('HINCRBY', P .. 'findings', field, 1)
    local key = P .. 'evidence:' .. field
    if redis.call('LLEN', key) < a.max_evidence then
      redis.call('RPUSH', key, ARGV[5] .. cjson.encode(detail) .. '}')
    end
  end
  -- set field in a hash, remembering first-seen order in a list; at most limit fields
  local function remember(hash, field, value, limit)
    if redis.call('HSETNX', P .. hash, field, value) == 1 then
      redis.call('RPUSH', P .. hash .. '_order', field)
      if redis.call('LLEN', P .. hash .. '_order') > limit then
        redis.call('HDEL', P .. hash, redis.call('LPOP', P .. hash .. '_order'))
      end
    else
      redis.call('HSET', P .. hash, field, value)
    end
  end
  if a.counted then redis.call('HINCRBY', P .. 'tallies', acct .. '\0requests', 1) end
  local late, worst = 0, nil
  for _, scope in ipairs(a.scopes) do
    local field = acct .. '\0' .. scope
    local wait = redis.call('HGET', P .. 'waits', field)
    if wait then
      local sep = string.find(wait, ' ', 1, true)
      local until_, told_wall = tonumber(string.sub(wait, 1, sep - 1)),
        tonumber(string.sub(wait, sep + 1))
      if now < until_ and a.wall > told_wall + a.grace_s and until_ - now > late then
        late, worst = until_ - now, scope
      end
    end
  end
  if worst then
    find('retry_after_ignored',
      string.format('sent %.3f s before the Retry-After ran out (scope %s)', late, worst))
  end
  if a.poll then
    local field = acct .. '\0' .. a.poll
    local old = redis.call('HGET', P .. 'polls', field)
    local gap, count = math.huge, 1
    if old then
      local sep = string.find(old, ' ', 1, true)
      gap = now - tonumber(string.sub(old, 1, sep - 1))
      count = tonumber(string.sub(old, sep + 1)) + 1
    end
    remember('polls', field, num(now) .. ' ' .. count, a.max_polled)
    if count > a.max_polls then
      find('poll_storm', string.format('query %d of this task (at most %d)', count, a.max_polls))
    elseif gap < a.poll_interval_s then
      find('poll_storm', string.format(
        'queried %.3f s after the previous query of this task (at most one per %s s)',
        gap, a.interval_text))
    elseif a.poll_age and a.poll_age > a.poll_deadline_s then
      find('poll_storm', a.deadline_detail)
    end
  end
  if a.create_key then
    local field = acct .. '\0' .. a.create_key
    local then_ = redis.call('HGET', P .. 'lost', field)
    local gap = then_ and now - tonumber(then_)
    if gap and gap >= 0 and gap <= a.retry_window_s then
      find('retry_without_idempotency', string.format('the same create as one whose answer ' ..
        'was lost %.3f s before, sent again without external_task_id', gap))
    elseif a.overlap_detail then
      find('retry_without_idempotency', a.overlap_detail)
    end
    if a.lost then remember('lost', field, num(now), a.max_lost) end
  end
  if a.token then
    local field = acct .. '\0' .. a.token
    if redis.call('HEXISTS', P .. 'tokens', field) == 0 then
      remember('tokens', field, '1', a.max_tokens)
      find('token_signed', a.signed_detail)
      for _, pair in ipairs(a.token_findings) do find(pair[1], pair[2]) end
    end
  end
  if a.fetched then remember('fetched', a.fetched, '1', a.max_fetched) end
  for _, pair in ipairs(a.findings) do find(pair[1], pair[2]) end
  if a.told then
    redis.call('HINCRBY', P .. 'tallies', acct .. '\0rate_limited', 1)
    local field = acct .. '\0' .. a.told[1]
    local until_ = a.told[2]
    local old = redis.call('HGET', P .. 'waits', field)
    local value = num(until_) .. ' ' .. num(a.told_wall)
    if old then
      local sep = string.find(old, ' ', 1, true)
      local old_until = tonumber(string.sub(old, 1, sep - 1))
      if now < old_until then  -- a wait still running keeps its first 429's wall time
        value = num(math.max(until_, old_until)) .. ' ' .. string.sub(old, sep + 1)
      end
    end
    remember('waits', field, value, a.max_waits)
  end
end
local n = redis.call('RPUSH', P .. 'journal', ARGV[2])
local over = n - tonumber(ARGV[3])
if over > 0 then
  redis.call('LTRIM', P .. 'journal', over, -1)
  redis.call('HINCRBY', P .. 'ctr', 'journal_dropped', over)
end
return 1
""",
    "audit": r"""
local e = need_epoch() if e then return e end
local flat = redis.call('HGETALL', P .. 'findings')
local out = {}
for i = 1, #flat, 2 do
  out[#out + 1] = {flat[i], flat[i + 1], redis.call('LRANGE', P .. 'evidence:' .. flat[i], 0, -1)}
end
return out
""",
    # ARGV: prefix, session id
    "session": r"""
local e = need_epoch() if e then return e end
return redis.call('HGET', P .. 'sess', ARGV[2])
""",
    # ARGV: prefix, account, session id, doc (JSON), version held, sessions kept per account
    "put_session": r"""
local e = need_epoch() if e then return e end
local held = redis.call('HGET', P .. 'sessv', ARGV[3])
if (tonumber(held) or 0) ~= tonumber(ARGV[5]) then return 0 end
redis.call('HSET', P .. 'sess', ARGV[3], ARGV[4])
redis.call('HSET', P .. 'sessv', ARGV[3], tonumber(ARGV[5]) + 1)
if not held then
  local own = P .. 'sessof:' .. ARGV[2]
  redis.call('ZADD', own, redis.call('INCR', P .. 'sessseq'), ARGV[3])
  local over = redis.call('ZCARD', own) - tonumber(ARGV[6])
  if over > 0 then
    local gone = redis.call('ZRANGE', own, 0, over - 1)
    redis.call('ZREMRANGEBYRANK', own, 0, over - 1)
    redis.call('HDEL', P .. 'sess', unpack(gone))
    redis.call('HDEL', P .. 'sessv', unpack(gone))
  end
end
return 1
""",
    # ARGV: prefix, account\0finding id, evidence (JSON), max evidence
    "note": r"""
local e = need_epoch() if e then return e end
redis.call('HINCRBY', P .. 'findings', ARGV[2], 1)
local key = P .. 'evidence:' .. ARGV[2]
if redis.call('LLEN', key) < tonumber(ARGV[4]) then redis.call('RPUSH', key, ARGV[3]) end
return 1
""",
    "fetched": r"""
local e = need_epoch() if e then return e end
return redis.call('HKEYS', P .. 'fetched')
""",
    # ARGV: prefix, limit (-1 = all)
    "journal": r"""
local e = need_epoch() if e then return e end
local limit = tonumber(ARGV[2])
local entries = {}
if limit < 0 then entries = redis.call('LRANGE', P .. 'journal', 0, -1)
elseif limit > 0 then entries = redis.call('LRANGE', P .. 'journal', -limit, -1) end
return {redis.call('HGET', P .. 'ctr', 'journal_dropped') or '0', entries}
""",
    # ARGV: prefix, account\0counter, count
    "bump": r"""
local e = need_epoch() if e then return e end
return redis.call('HINCRBY', P .. 'tallies', ARGV[2], ARGV[3])
""",
    "counters": r"""
local e = need_epoch() if e then return e end
return redis.call('HGETALL', P .. 'tallies')
""",
    "rules": r"""
local e = need_epoch() if e then return e end
return {redis.call('HGET', P .. 'head', 'rv'), redis.call('GET', P .. 'rules')}
""",
    # ARGV: prefix, version, doc, then the ids that remain
    "put_rules": r"""
local e = need_epoch() if e then return e end
if redis.call('HGET', P .. 'head', 'rv') ~= ARGV[2] then return 0 end
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
for _, field in ipairs(redis.call('HKEYS', P .. 'counts')) do
  if not keep[string.sub(field, 3)] then redis.call('HDEL', P .. 'counts', field) end
end
redis.call('SET', P .. 'rules', ARGV[3])
redis.call('HINCRBY', P .. 'head', 'rv', 1)
return 1
""",
    # ARGV: prefix, rule id, times ('' none), won (1/0)
    "fire": r"""
local e = need_epoch() if e then return e end
local fired = tonumber(redis.call('HGET', P .. 'counts', 'f:' .. ARGV[2]) or '0')
if ARGV[3] ~= '' and fired >= tonumber(ARGV[3]) then return 0 end
if ARGV[4] == '1' then
  redis.call('HINCRBY', P .. 'counts', 'f:' .. ARGV[2], 1)
  return 1
end
redis.call('HINCRBY', P .. 'counts', 's:' .. ARGV[2], 1)
return 0
""",
    "rule_counts": r"""
local e = need_epoch() if e then return e end
return redis.call('HGETALL', P .. 'counts')
""",
    # ARGV: prefix, delivery, due, epoch ('' any)
    "push": r"""
local e = need_epoch() if e then return e end
if ARGV[4] ~= '' and ARGV[4] ~= E then return 0 end
redis.call('ZADD', P .. 'queue', ARGV[3], ARGV[2])
return 1
""",
    # ARGV: prefix, now, wall, hold, token
    "lease": r"""
local e = need_epoch() if e then return e end
local wall = tonumber(ARGV[3])
local leases = redis.call('HGETALL', P .. 'leases')
for i = 1, #leases, 2 do
  local expires, due, item = string.match(leases[i + 1], '^([^|]+)|([^|]+)|(.*)$')
  if tonumber(expires) <= wall then
    redis.call('HDEL', P .. 'leases', leases[i])
    redis.call('ZADD', P .. 'queue', due, item)
  end
end
local head = redis.call('ZRANGEBYSCORE', P .. 'queue', '-inf', ARGV[2], 'WITHSCORES', 'LIMIT',
  0, 1)
if #head == 0 then return false end
redis.call('ZREM', P .. 'queue', head[1])
redis.call('HSET', P .. 'leases', ARGV[5], num(wall + tonumber(ARGV[4])) .. '|' .. head[2] ..
  '|' .. head[1])
return {E, head[1]}
""",
    # ARGV: prefix, token, epoch
    "release": r"""
local e = need_epoch() if e then return e end
if ARGV[3] == E then redis.call('HDEL', P .. 'leases', ARGV[2]) end
return 1
""",
    "pending": r"""
local e = need_epoch() if e then return e end
local head = redis.call('ZRANGE', P .. 'queue', 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', P .. 'queue'), redis.call('HLEN', P .. 'leases'), head[2] or false}
""",
    # ARGV: prefix, record, epoch, capacity
    "add_attempt": r"""
local e = need_epoch() if e then return e end
if ARGV[3] ~= E then return 0 end
local n = redis.call('RPUSH', P .. 'attempts', ARGV[2])
if n > tonumber(ARGV[4]) then redis.call('LTRIM', P .. 'attempts', n - tonumber(ARGV[4]), -1) end
return 1
""",
    "attempts": r"""
local e = need_epoch() if e then return e end
return redis.call('LRANGE', P .. 'attempts', 0, -1)
""",
}
