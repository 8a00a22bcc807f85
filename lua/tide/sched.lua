-- The scheduler's Lua shape. Components run as coroutines resumed from the
-- engine's ready queue in C (lsched.c, over scheduler.h), on the engine's
-- libuv loop: a task that waits (for another task, for a free slot, for a
-- process or a timer) yields, and the scheduler resumes the ready ones in
-- order. At most `max_inflight` component tasks exist at once; a parent
-- waiting for its children gives its turn up.
--
-- What lives here: the function a worker coroutine runs (kept for the next
-- task once one ends: a coroutine is a thread and a stack for the
-- collector to make and sweep), and the task of a coroutine, which
-- tide.fn's call (lmemo.c), targets and files read to find the component
-- they run in. The rest is the C object's methods, re-exported as
-- functions of the scheduler object.
local core = require "tide.core"

local yield, running = coroutine.yield, coroutine.running
local DONE = core.SCHED_DONE

local M = {}

local task_of = setmetatable({}, { __mode = "k" }) -- coroutine -> task
M.task_of = task_of

-- A worker yields DONE when its task returned and is resumed with the next
-- (runner, task); a task that raised leaves its worker dead.
local function worker(f, task)
  while true do
    f(task)
    f, task = yield(DONE)
  end
end

-- The task the running coroutine belongs to, or nil: a component frame,
-- or an item of a concurrent tide.map (item.frame is its component's).
-- Memoized calls nest per task (task.memo_stack).
function M.current()
  return task_of[running()]
end

-- The component frame the running coroutine works for, or nil: how a
-- tide.fn, a target handle or a file finds the run it is called in.
function M.current_frame()
  local task = task_of[running()]
  return task and (task.frame or task)
end

-- A new cycle on the engine's scheduler s: opts are runner(task), the body
-- of every task; on_abort(task, message), for a task whose own code
-- yielded to the scheduler; max_inflight; on_progress.
function M.reset(s, opts)
  s:reset { worker = worker, task_of = task_of, runner = opts.runner,
            on_abort = opts.on_abort, max_inflight = opts.max_inflight,
            on_progress = opts.on_progress }
end

-- A line of parked tasks, first in first out (a table made by line()):
-- wait_in_line parks the running task at its end, giving its slot up;
-- wake_first wakes the first and returns true, or false when none waits.
function M.line() return { head = 1, tail = 0 } end

function M.wait_in_line(s, q, task)
  q.tail = q.tail + 1
  q[q.tail] = task
  s:park()
end

function M.wake_first(s, q)
  local task = q[q.head]
  if not task then return false end
  q[q.head] = nil
  q.head = q.head + 1
  s:wake(task)
  return true
end

-- A scheduler of its own on the loop object loop (core.sched_new), for
-- tasks that outlive a cycle (live sources' watch functions): they run
-- runner(task), on_abort(task, message) for one that yielded to it, and
-- are not components (current() is nil in them). Its owner runs it with
-- run_ready() and closes it.
function M.own(loop, runner, on_abort)
  local s = core.sched_new(loop)
  s:reset { worker = worker, task_of = setmetatable({}, { __mode = "k" }),
            runner = runner, on_abort = on_abort }
  return s
end

-- Gathers what the tasks ready now ask for into one read (a store's
-- reads that cross a connection): the first task to ask opens a group
-- at holder[field], lets the tasks ready at that moment run up to their
-- own ask (each joins the group and parks), then calls read(group) once
-- and wakes them. add(group) adds the asking task's part. Returns the
-- group, read; what read raised is raised in every task of the group. A
-- task that asks outside the scheduler reads alone.
function M.gather(s, holder, field, add, read)
  local group, lead = holder[field], false
  if not group then
    group, lead = { tasks = {} }, true
    holder[field] = group
  end
  add(group)
  if lead then
    s:pass()
    holder[field] = nil
    local ok, err = pcall(read, group)
    group.err, group.done = not ok and err or nil, true
    for _, task in ipairs(group.tasks) do s:wake(task) end
  else
    group.tasks[#group.tasks + 1] = M.current()
    while not group.done do s:park() end
  end
  if group.err then error(group.err, 0) end
  return group
end

function M.spawn(s, task) return s:spawn(task) end
function M.wait(s, task) return s:wait(task) end
function M.wait_any(s, tasks, n) return s:wait_any(tasks, n) end
function M.throttle(s) return s:throttle() end
function M.expect(s, n) return s:expect(n) end
function M.listed(s) return s:listed() end
function M.carry(s, n) return s:carry(n) end
function M.run(s, until_task) return s:run(until_task) end
function M.park(s) return s:park() end
function M.wake(s, task) return s:wake(task) end
function M.pass(s) return s:pass() end
function M.hurry(s, task) return s:hurry(task) end

return M
