-- The scheduler: components run as coroutines on the engine's libuv loop.
-- A task that waits (for another task, for a free slot, for I/O) yields;
-- the scheduler resumes ready tasks in order and advances the loop
-- between them. At most `max_inflight` component tasks exist at once; a
-- parent waiting for its children gives its turn up. Tasks are resumed
-- with core.resume, so that a signal reaches the one running (lsignal.c);
-- once a stop is requested no task is resumed again.
--
-- A task is the caller's own table (the engine's component frame): the
-- scheduler adds co (its coroutine, from its first run), done, and, for
-- the few that need them, waiters, expecting and listing. Every task runs
-- the scheduler's runner(task) and, when its own code yields to the
-- scheduler, is failed through on_abort(task, message).
local core = require "tide.core"

-- core.resume is coroutine.resume that notes the running coroutine.
local create, resume, yield, running, status =
  coroutine.create, core.resume, coroutine.yield, coroutine.running,
  coroutine.status
local stop_requested = core.stop_requested

local M = {}

local task_of = setmetatable({}, { __mode = "k" }) -- coroutine -> task

-- opts: runner, on_abort (above), max_inflight, loop, on_progress.
function M.new(opts)
  return {
    runner = opts.runner, on_abort = opts.on_abort,
    queue = {}, head = 1, tail = 0, inflight = 0,
    max_inflight = opts.max_inflight or 1024,
    loop = opts.loop or core.loop_new(), spawned = 0, finished = 0,
    pool = {}, -- idle worker coroutines
    own_loop = not opts.loop,
    -- For the progress line: tasks that listed sources announced and have
    -- not spawned yet, components settled without a task (carried over
    -- unchanged), and how many tasks are listing a source whose length is
    -- not known (while one is, the total is a lower bound).
    expected = 0, carried = 0, open = 0,
    on_progress = opts.on_progress,
  }
end

local function push(s, task)
  s.tail = s.tail + 1
  s.queue[s.tail] = task
end

local function pop(s)
  if s.head > s.tail then return nil end
  local task = s.queue[s.head]
  s.queue[s.head] = nil
  s.head = s.head + 1
  return task
end

-- Tasks run on worker coroutines that are kept for the next task once one
-- ends: a coroutine is a thread and a stack for the collector to make and
-- sweep, and a run makes one task per component. A worker yields DONE
-- when its task returned and is resumed with the next (runner, task); a
-- task that raised leaves its worker dead, and it is not kept.
local DONE = {}
local POOL_MAX = 256

local function worker(f, task)
  while true do
    f(task)
    f, task = yield(DONE)
  end
end

-- Queues task (a table, see above). Its worker is taken when it first
-- runs: the tasks a parent spawns wait in the queue without one, so that
-- a worker is needed only per task that runs or waits.
function M.spawn(s, task)
  s.inflight = s.inflight + 1
  s.spawned = s.spawned + 1
  local parent = task_of[running()]
  if parent and parent.expecting then
    -- One of the tasks its parent announced: already in the total.
    parent.expecting = parent.expecting - 1
    s.expected = s.expected - 1
    if parent.expecting == 0 then parent.expecting = nil end
  end
  push(s, task)
  return task
end

-- The task (the component frame) the running coroutine belongs to, or
-- nil: how a tide.fn, a target handle or a file finds the run it is
-- called in.
function M.current()
  return task_of[running()]
end
M.current_frame = M.current

M.task_of = task_of

-- Waits until task, of scheduler s, is done.
function M.wait(s, task)
  if task.done then return end
  local me = M.current()
  if not me then
    -- Outside any task: drive the scheduler until the task is done.
    M.run(s, task)
    return
  end
  local waiters = task.waiters
  if not waiters then
    waiters = {}
    task.waiters = waiters
  end
  waiters[#waiters + 1] = me
  yield("wait")
end

-- Called by a task that spawns many children: when the in-flight limit is
-- reached it steps aside so the children it spawned can finish.
function M.throttle(s)
  if s.inflight >= s.max_inflight and M.current() then
    yield("again")
  end
end

-- Progress: the current task is about to spawn n tasks, one per item a
-- source listed (n known), or an unknown number of them (n nil); the total
-- counts the n at once, so that it does not grow with every spawn. What it
-- announced and did not spawn is dropped by sched.listed or when it ends.
function M.expect(s, n)
  local task = M.current()
  if not task then return end
  if n == nil then
    if not task.listing then
      task.listing = true
      s.open = s.open + 1
    end
  elseif n > 0 then
    task.expecting = (task.expecting or 0) + n
    s.expected = s.expected + n
  end
end

local function listed(s, task)
  if task.expecting then
    s.expected = s.expected - task.expecting
    task.expecting = nil
  end
  if task.listing then
    task.listing = nil
    s.open = s.open - 1
  end
end

-- The current task has spawned all it announced with sched.expect.
function M.listed(s)
  local task = M.current()
  if task then listed(s, task) end
end

-- n components were settled without a task (unchanged, carried over whole
-- by the C index): they count as done and in the total.
function M.carry(s, n)
  s.carried = s.carried + n
end

local function finish(s, task)
  task.done = true
  s.inflight = s.inflight - 1
  s.finished = s.finished + 1
  listed(s, task)
  if s.on_progress then
    -- done, total, components this run processed (for the rate), and
    -- whether the total is still a lower bound.
    s.on_progress(s.finished + s.carried, s.spawned + s.expected + s.carried,
                  s.finished, s.open > 0)
  end
  local waiters = task.waiters
  if waiters then
    for i = 1, #waiters do push(s, waiters[i]) end
    task.waiters = nil
  end
  local co = task.co
  if co then
    task_of[co] = nil
    task.co = false -- the worker goes back to the pool
  end
end

-- Runs tasks until the queue is empty (or `until_task` is done), or until
-- a stop is requested (the first SIGINT or SIGTERM `tide update` traps):
-- then the tasks not started or waiting stay so. s.stopped says whether a
-- stop came while it ran (it may have interrupted the last task).
function M.run(s, until_task)
  local loop = s.loop
  while not (until_task and until_task.done) do
    local task = pop(s)
    if not task then
      if loop:alive() then
        loop:run("once")
      else
        break
      end
    elseif stop_requested() then
      s.head = s.head - 1 -- back at the front of the queue
      s.queue[s.head] = task
      break
    else
      local ok, what
      local co = task.co
      if not co then
        -- First resume: a worker, the runner and the task.
        local pool = s.pool
        local n = #pool
        if n > 0 then
          co = pool[n]
          pool[n] = nil
        else
          co = create(worker)
        end
        task.co = co
        task_of[co] = task
        ok, what = resume(co, s.runner, task)
      else
        ok, what = resume(co)
      end
      if ok and what == DONE then
        finish(s, task)
        local pool = s.pool
        if #pool < POOL_MAX then pool[#pool + 1] = co end
      elseif status(co) == "dead" then
        finish(s, task)
      elseif what == "again" then
        push(s, task)
      elseif what ~= "wait" then
        -- The task's own code yielded to the scheduler: it cannot be
        -- resumed meaningfully, so it fails (and its owner is told).
        coroutine.close(task.co)
        local message = "coroutine.yield() was called outside a coroutine "
          .. "the component created: component code cannot yield to tide"
        finish(s, task)
        s.on_abort(task, message)
      end
      -- Otherwise the task waits and a finishing task requeues it. The loop
      -- is polled only when something waits on it (no system call per
      -- task otherwise).
      if loop:alive() then loop:run("nowait") end
    end
  end
  if stop_requested() then s.stopped = true end
end

function M.close(s)
  if s.own_loop then s.loop:close() end
end

return M
