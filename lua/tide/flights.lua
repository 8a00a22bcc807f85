-- Memoized calls in flight: the same call (its memo key) computed by
-- another task of the run. A batch's items are all in flight at once, and
-- so are concurrent components' model calls: a second caller waits for
-- the first (await) and then hits the entry it left, rather than compute
-- it again (a model paid twice); when the first failed, the next computes
-- in its turn. A call the computing task makes again (recursion) is not
-- made to wait for itself.
--
-- run.in_flight: memo key -> the task computing it (true outside a task);
-- run.flight_lines: memo key -> the tasks waiting, a line made only when
-- one comes. A task keeps its flights (task.flights) until they land: one
-- the scheduler aborts (its code yielded to it) never returns to land
-- them, and the engine's abort_component has them landed (abort).
local sched = require "tide.sched"

local pairs = pairs

local M = {}

function M.await(run, key)
  local task = sched.current()
  local owner = run.in_flight[key]
  while owner and owner ~= task do
    local line = run.flight_lines[key]
    if not line then
      line = sched.line()
      run.flight_lines[key] = line
    end
    sched.wait_in_line(run.sched, line, task)
    owner = run.in_flight[key]
  end
end

-- Marks key as computed by the running task; returns the owner land takes.
function M.take_off(run, key)
  local task = sched.current()
  if not task then
    run.in_flight[key] = true
    return true
  end
  local flights = task.flights
  if not flights then
    flights = {}
    task.flights = flights
  end
  flights[key] = true
  run.in_flight[key] = task
  return task
end

-- The computation of key by owner ended, whichever way: its waiters go on.
function M.land(run, key, owner)
  if run.in_flight[key] == owner then run.in_flight[key] = nil end
  if owner ~= true then owner.flights[key] = nil end
  local line = run.flight_lines[key]
  if line then
    run.flight_lines[key] = nil
    while sched.wake_first(run.sched, line) do end
  end
end

-- Lands what an aborted task was computing.
function M.abort(run, task)
  local flights = task.flights
  if flights then
    for key in pairs(flights) do M.land(run, key, task) end
  end
end

return M
