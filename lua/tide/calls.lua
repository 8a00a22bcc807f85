-- How a tide.fn's body is called inside a component once the memo said
-- it must run: at once, under its `concurrency` limit, or grouped with
-- other callers' items into a batch (`batch`).
--
-- concurrency = N: at most N calls of the function run at once in a run;
-- a caller over the limit parks (giving its slot up) until a call ends,
-- first come first served.
--
-- batch = N, or { size = N, cost = function(item) ... end, max_cost = C }:
-- the body takes a list of items and returns a list of results of the same
-- length. A caller's item joins the function's queue; when fewer batches
-- run than the concurrency limit (1 by default), the caller leads: it
-- lets the tasks ready at that moment run up to their own calls (so a
-- body that never waits still gets company) until N items are queued for
-- it (sched.hurry then brings it back first), takes the items queued
-- first, up to N items (or up to max_cost, the sum
-- of cost(item); an item alone over it still runs alone), runs the body
-- once on them, hands the lead to the first item still queued (which
-- runs before the callers, so the next call starts at once), and hands
-- every caller its own result. Calls that arrive while a batch runs wait
-- for the next one; nothing waits for a timer. A caller outside any
-- component calls the body with its item alone.
--
-- Errors: an error in the body fails every caller in that batch with it;
-- tide.smaller_batch() raised in the body runs the batch again split in
-- halves, down to single items, so that one bad item fails only its own
-- caller. A result list of the wrong length fails the batch's callers
-- with a message naming the function. What the body records (the
-- functions it calls) joins each caller's record; a batched body cannot
-- declare target states (whose item would they be?).
local sched = require "tide.sched"

local type, error, setmetatable, pcall, select, pairs, ipairs, tostring =
  type, error, setmetatable, pcall, select, pairs, ipairs, tostring
local fmt = string.format

local M = {}

-- What tide.smaller_batch() raises.
local SMALLER = setmetatable({}, { __name = "tide.smaller_batch",
  __tostring = function() return "tide.smaller_batch()" end })

function M.smaller_batch() error(SMALLER, 0) end

-- ---- Options (tide.fn checks them at definition) ----

local function positive_integer(v)
  return math.type(v) == "integer" and v >= 1
end

-- The batch option as { size, cost, max_cost }, or nil and a message.
function M.batch_option(v)
  if positive_integer(v) then return { size = v } end
  if type(v) ~= "table" then
    return nil, "batch must be a positive integer or a table "
      .. "{ size, cost, max_cost }"
  end
  for k in pairs(v) do
    if k ~= "size" and k ~= "cost" and k ~= "max_cost" then
      return nil, "unknown batch option " .. tostring(k)
    end
  end
  if v.size ~= nil and not positive_integer(v.size) then
    return nil, "batch.size must be a positive integer"
  end
  if (v.cost == nil) ~= (v.max_cost == nil) then
    return nil, "batch.cost and batch.max_cost go together"
  end
  if v.cost ~= nil and type(v.cost) ~= "function" then
    return nil, "batch.cost must be a function of an item"
  end
  if v.max_cost ~= nil and (type(v.max_cost) ~= "number"
                            or not (v.max_cost > 0)) then -- NaN too
    return nil, "batch.max_cost must be a positive number"
  end
  if v.size == nil and v.cost == nil then
    return nil, "batch needs a size, or a cost and a max_cost"
  end
  return { size = v.size or math.huge, cost = v.cost, max_cost = v.max_cost }
end

-- The plain call a batched function makes outside a component (and what
-- its body field is): its body on a list of one.
function M.single(fn_name, batch_body)
  return function(item, ...)
    if select("#", ...) > 0 then
      error(fmt("tide.fn %s is batched: it takes one argument per call",
                fn_name), 2)
    end
    local results = batch_body({ item })
    if type(results) ~= "table" or #results ~= 1 then
      error(fmt("tide.fn %s: a batch of 1 item returned %s", fn_name,
                type(results) == "table" and #results .. " results"
                or type(results)), 0)
    end
    return results[1]
  end
end

-- ---- The concurrency limit ----

-- The run's state of a function: calls running, callers waiting.
local function state_of(run, fn)
  local st = run.call_states[fn]
  if not st then
    -- waiting (callers over the limit) and queue[qhead..qtail] (a batch's
    -- calls): first in, first out.
    -- fillers: the leaders that passed to let callers join their batch,
    -- first first.
    st = { running = 0, waiting = sched.line(), queue = {},
           qhead = 1, qtail = 0, fillers = {} }
    run.call_states[fn] = st
  end
  return st
end

-- Calls (or, for a batched function, batches) that may run at once.
local function limit_of(fn)
  return fn.concurrency or (fn.batch and 1) or math.huge
end

local function acquire(run, st, fn, task)
  if st.running < limit_of(fn) then
    st.running = st.running + 1
    return
  end
  -- release hands its turn over: running stays counted for us.
  sched.wait_in_line(run.sched, st.waiting, task)
end

local function release(run, st)
  if not sched.wake_first(run.sched, st.waiting) then
    st.running = st.running - 1
  end
end

-- call(...) for task under fn's concurrency limit (call runs fn's body,
-- protected and counted).
function M.limited(run, task, fn, call, ...)
  local st = state_of(run, fn)
  acquire(run, st, fn, task)
  local ok, results = pcall(call, ...)
  release(run, st)
  if not ok then error(results, 0) end
  return results
end

-- ---- Batches ----

-- The cost of a request's item, or nil when it cannot be computed (the
-- request then fails with why).
local function cost_of(opt, req)
  if not opt.cost then return 0 end
  local ok, c = pcall(opt.cost, req.item)
  if ok and type(c) == "number" and c >= 0 then return c end
  req.ok, req.result = false, ok and "batch.cost must return a number, 0 "
    .. "or more" or c
  return nil
end

-- The leader's batch: its own request, then the items queued first, up
-- to the size and the cost limit. A request whose cost cannot be
-- computed fails its own caller (in failed).
local function take_batch(st, opt, own, failed)
  local q, batch, cost = st.queue, {}, 0
  local c = cost_of(opt, own)
  if c then
    batch[1], cost = own, c
  else
    failed[1] = own
  end
  while q[st.qhead] and #batch < opt.size do
    local req = q[st.qhead]
    c = cost_of(opt, req)
    if c and opt.max_cost and #batch > 0 and cost + c > opt.max_cost then
      break
    end
    q[st.qhead] = nil
    st.qhead = st.qhead + 1
    if c then
      cost = cost + c
      batch[#batch + 1] = req
    else
      failed[#failed + 1] = req
    end
  end
  return batch
end

-- Runs the body on the requests' items; every request gets ok and its
-- result (or error). Splits on tide.smaller_batch().
local function run_batch(fn, reqs, call_body)
  local items = {}
  for i = 1, #reqs do items[i] = reqs[i].item end
  local ok, results = pcall(call_body, items)
  if not ok and results == SMALLER then
    if #reqs == 1 then
      reqs[1].ok, reqs[1].result = false, fmt("tide.fn %s asked for a "
        .. "smaller batch (tide.smaller_batch) for a single item", fn.name)
      return
    end
    local half = #reqs // 2
    local a, b = {}, {}
    for i = 1, #reqs do
      if i <= half then a[#a + 1] = reqs[i] else b[#b + 1] = reqs[i] end
    end
    run_batch(fn, a, call_body)
    run_batch(fn, b, call_body)
    return
  end
  if ok and (type(results) ~= "table" or #results ~= #reqs) then
    ok, results = false, fmt("tide.fn %s: a batch of %d item%s returned %s",
      fn.name, #reqs, #reqs == 1 and "" or "s", type(results) == "table"
      and (#results .. (#results == 1 and " result" or " results"))
      or type(results))
  end
  for i = 1, #reqs do
    local req = reqs[i]
    if ok then
      req.ok, req.result = true, results[i]
    else
      req.ok, req.result = false, results
    end
  end
end

-- Takes the first request off the queue to lead a batch: taken off, no
-- other leader can take it into its own batch.
local function take_lead(st)
  local req = st.queue[st.qhead]
  st.queue[st.qhead] = nil
  st.qhead = st.qhead + 1
  st.running = st.running + 1
  req.lead = true
  return req
end

-- The first request still queued leads next, if the limit allows.
local function hand_over(run, st, fn)
  if st.queue[st.qhead] and st.running < limit_of(fn) then
    sched.wake(run.sched, take_lead(st).task)
  end
end

-- fn(item) called by task: true and its result, or false and its error,
-- once the batch it joined ran. call_body(items) runs the body in
-- protected mode, raising what it raised; done(scope) is called once per
-- request that ran in a batch, with the scope its caller gave (to record
-- what the body called in each caller). A request is woken once: by the
-- hand-over that makes it lead (then it is off the queue) or by the
-- leader that ran it.
function M.batched(run, task, fn, item, scope, call_body, done)
  local st = state_of(run, fn)
  local req = { item = item, task = task, scope = scope, ok = nil,
                result = nil, lead = nil }
  st.qtail = st.qtail + 1
  st.queue[st.qtail] = req
  if st.running < limit_of(fn) and st.queue[st.qhead] == req then
    take_lead(st)
    -- The callers ready now (the other items of a map, the components
    -- queued) run up to their call first and join this batch, until it
    -- is full: then its leader runs at once, and the rest join the next.
    local fillers = st.fillers
    fillers[#fillers + 1] = task
    sched.pass(run.sched)
    for i = 1, #fillers do
      if fillers[i] == task then table.remove(fillers, i) break end
    end
  elseif st.fillers[1] and st.qtail - st.qhead + 2 >= fn.batch.size then
    sched.hurry(run.sched, table.remove(st.fillers, 1))
  end
  while not req.lead and req.ok == nil do
    sched.park(run.sched)
  end
  if req.lead then
    local batch, failed = {}, {}
    local fine, err = pcall(function()
      batch = take_batch(st, fn.batch, req, failed)
      if #batch > 0 then run_batch(fn, batch, call_body) end
      for i = 1, #batch do done(batch[i].scope) end
    end)
    st.running = st.running - 1
    -- The next batch is sent before this one's callers resume: woken
    -- first, its leader runs first, and the callers' own work (often all
    -- the rest of their components) overlaps its wait.
    hand_over(run, st, fn)
    -- Whatever happened, every caller taken gets an answer and is woken.
    for _, list in ipairs({ batch, failed }) do
      for i = 1, #list do
        local r = list[i]
        if not fine then r.ok, r.result = false, err end
        if r ~= req then sched.wake(run.sched, r.task) end
      end
    end
    if not fine then req.ok, req.result = false, err end
  end
  return req.ok, req.result
end

return M
