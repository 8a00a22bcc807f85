-- Reconciliation: the target states a component declares, diffed against
-- those it owned, applied with the intent protocol.
--
-- A batch of submitted components is written in three steps: (1) the
-- components and their new target states, marked pending, in one store
-- transaction; (2) each container's changes applied to the target in one
-- call (one target transaction); (3) the states marked applied. After a
-- crash, pending states tell the next run what it cannot trust (run.lua
-- recovers them). A state a component stops declaring is released, and
-- deleted at the end of the run unless another component claims it: a
-- state moving between components is then one update, not a delete and an
-- insert.
local core = require "tide.core"

local type, error, pairs, ipairs, tostring, pcall =
  type, error, pairs, ipairs, tostring, pcall
local fmt = string.format
local encode, decode = core.cbor_encode, core.cbor_decode
local fingerprint_raw = core.fingerprint_raw

local M = {}

local PENDING_UPSERT, PENDING_DELETE = 1, 2

local function describe_key(key)
  if type(key) == "table" and #key == 1 then key = key[1] end
  if type(key) == "string" then return fmt("%q", key) end
  local ok, s = pcall(function()
    return require("tide.json").encode(key)
  end)
  return ok and s or tostring(key)
end
M.describe_key = describe_key

-- Records one declared target state in the running component.
function M.declare(frame, container, key, value, level)
  local run = frame.run
  local kb = encode(key, container.short .. " key")
  local per = frame.declared[container]
  if not per then
    per = {}
    frame.declared[container] = per
  end
  if per[kb] then
    error(fmt("target key %s of %s declared twice by %s", describe_key(key),
              container.short, frame.path), level + 1)
  end
  local claims = run.claims[container.id]
  local other = claims[kb]
  if other and other ~= frame.path then
    error(fmt("target key %s of %s declared by both %s and %s",
              describe_key(key), container.short, other, frame.path),
          level + 1)
  end
  claims[kb] = frame.path
  local d = { key = key, value = value,
              fp = fingerprint_raw(value, container.short .. " value") }
  per[kb] = d
  frame.declared_order[#frame.declared_order + 1] = { container, kb }
  local memo = frame.memo_stack[#frame.memo_stack]
  if memo then
    memo.targets[#memo.targets + 1] =
      { container.kind, container.identity, key, value }
  end
end

-- Declares again a state a memo hit carries over.
function M.declare_replayed(frame, t)
  local container = frame.run.containers[t[1] .. "\0" .. t[2]]
  if not container then
    error(fmt("a memoized call declared into %s %s, which this run has not "
              .. "declared", t[1], t[2]), 0)
  end
  M.declare(frame, container, t[3], t[4], 1)
end

-- Diffs a component's declarations against what it owned and queues the
-- changes for the next batch.
function M.submit(run, frame)
  local store = run.store
  local owned = {}
  if frame.prev then
    for _, row in ipairs(store:targets_by_owner(frame.prev.id)) do
      local per = owned[row.container_id]
      if not per then per = {}; owned[row.container_id] = per end
      per[row.key] = row
    end
  end
  local changes = {}
  for _, item in ipairs(frame.declared_order) do
    local container, kb = item[1], item[2]
    local d = frame.declared[container][kb]
    local cid = container.id
    local old = owned[cid] and owned[cid][kb]
    local write
    if old then
      owned[cid][kb] = nil
      if old.value_fp ~= d.fp or old.pending ~= 0 then write = "updated" end
    else
      -- A container created in this run holds no states yet.
      local row = not container.fresh and store:target(cid, kb)
      if row then
        local owner = run:path_of(row.owner_id)
        local state = owner and run:seen(owner)
        if state == "unchanged" or state == "failed" then
          error(fmt("target key %s of %s declared by both %s and %s",
                    describe_key(d.key), container.short, owner,
                    frame.path), 0)
        end
        run.released[cid][kb] = nil
        if row.value_fp ~= d.fp or row.pending ~= 0 then write = "updated" end
      else
        write = "inserted"
      end
    end
    changes[#changes + 1] = { container = container, kb = kb, d = d,
                              write = write }
  end
  for cid, per in pairs(owned) do
    for kb in pairs(per) do run.released[cid][kb] = true end
  end
  run.batch[#run.batch + 1] = { frame = frame, changes = changes }
  if #run.batch >= run.batch_size then M.flush(run) end
end

local function component_state(frame)
  -- Only a memoized component's value is ever read back.
  local value = frame.fn.memo and frame.value or nil
  return encode({ value = value, deps = frame.deps },
                frame.fn.name .. " result")
end

-- Records which memo entries the component uses now; those it used before
-- and no longer does become candidates for collection.
local function record_memo_refs(run, frame, id)
  local store = run.store
  if frame.prev then
    for _, k in ipairs(store:memo_refs(id)) do run.memo_candidates[k] = true end
    store:memo_refs_clear(id)
  end
  for k in pairs(frame.memos) do store:memo_ref_add(run.app_id, id, k) end
end

-- The containers a component declared are owned by it: when it runs again
-- without declaring one, or is deleted, the container is dropped.
local function record_container_owner(run, frame, id)
  for c in pairs(frame.declared_containers or {}) do
    if c.owner_id ~= id then
      run.store:container_update { id = c.id, spec = c.spec_bytes,
                                   owner_id = id, state = 0 }
      c.owner_id = id
    end
  end
end

-- Applies grouped changes per container: { [container] = { changes } }.
-- Returns the set of containers whose apply failed, with their errors.
local function apply_all(run, groups, order)
  local failed = {}
  for _, container in ipairs(order) do
    local list = groups[container]
    if run.opts.preview then
      run:preview(container, list)
    else
      local ok, err = pcall(container.type.apply, container.spec, list)
      if not ok then failed[container] = tostring(err) end
    end
  end
  return failed
end

local function group(groups, order, container, change)
  local list = groups[container]
  if not list then
    list = {}
    groups[container] = list
    order[#order + 1] = container
  end
  list[#list + 1] = change
end

-- Marks a container's applied changes: all its pending states at once,
-- unless an earlier apply to it failed in this run and left some pending
-- that this batch did not apply.
local function mark_applied(run, container, changes)
  if run.opts.preview then return end
  local store = run.store
  if run.apply_failed[container.id] then
    for _, ch in ipairs(changes) do
      store:target_mark_applied(container.id, ch.kb)
    end
  else
    store:targets_mark_applied(container.id)
  end
end

-- Writes the queued batch: intents, apply, then marks applied.
function M.flush(run)
  local batch = run.batch
  if #batch == 0 then return end
  run.batch = {}
  local store, app_id = run.store, run.app_id
  local groups, order = {}, {}
  for _, entry in ipairs(batch) do
    local frame = entry.frame
    local id = store:component_put {
      app_id = app_id, path = frame.path, fn = frame.fn.name,
      logic = frame.fn:logic_raw(), input = frame.input,
      source_key = frame.source_key, state = component_state(frame),
      deps_fp = fingerprint_raw(frame.deps), status = 0,
    }
    frame.id = id
    run.new_paths[id] = frame.path
    record_memo_refs(run, frame, id)
    record_container_owner(run, frame, id)
    for _, ch in ipairs(entry.changes) do
      store:target_put(ch.container.id, ch.kb, id, ch.d.fp,
                       ch.write and PENDING_UPSERT or 0)
      if ch.write then
        group(groups, order, ch.container,
              { key = ch.d.key, value = ch.d.value, write = ch.write,
                kb = ch.kb, frame = frame })
      end
    end
  end
  if not run.opts.preview then store:flush() end
  local failed = apply_all(run, groups, order)
  for _, container in ipairs(order) do
    local err = failed[container]
    for _, ch in ipairs(groups[container]) do
      if err then
        -- The states stay pending, so the next run redoes this component.
        run.apply_failed[container.id] = true
        if not ch.frame.apply_failed then
          ch.frame.apply_failed = true
          run:component_failed(ch.frame, fmt("writing to %s failed: %s",
                                             container.short, err))
        end
      else
        local t = run.stats.targets
        t[ch.write] = t[ch.write] + 1
      end
    end
    if not err then mark_applied(run, container, groups[container]) end
  end
  if not run.opts.preview then store:flush() end
end

-- Deletes released states (end of run): pending first, then applied.
function M.delete_released(run)
  local store = run.store
  local groups, order = {}, {}
  for cid, per in pairs(run.released) do
    for kb in pairs(per) do
      local container = run:container_by_id(cid)
      local row = store:target(cid, kb)
      if row then
        store:target_put(cid, kb, row.owner_id, row.value_fp, PENDING_DELETE)
        group(groups, order, container, { key = decode(kb), value = nil,
                                          kb = kb })
      end
    end
  end
  if #order == 0 then return end
  if not run.opts.preview then store:flush() end
  local failed = apply_all(run, groups, order)
  for _, container in ipairs(order) do
    if failed[container] then
      run.apply_failed[container.id] = true
      run:report_error(container.short, "deleting from " .. container.short
                       .. " failed: " .. failed[container])
    else
      run.stats.targets.deleted = run.stats.targets.deleted
        + #groups[container]
      mark_applied(run, container, groups[container])
    end
  end
  if not run.opts.preview then store:flush() end
end

return M
