-- Reconciliation: the target states a component declares, diffed against
-- those it owned, applied with the intent protocol.
--
-- A target state's row in the store carries a pending code:
--   0 APPLIED   the target holds the value whose fingerprint is recorded,
--               unless an intent names the state (below);
--   1 UPSERT    an upsert whose apply failed in this run, to be tried
--               again (its outcome is unknown until it is marked applied);
--   2 DELETE    a delete is being applied;
--   3 UNKNOWN   an upsert a crash interrupted: the target may hold any
--               value, and the owner must run again (and write it again);
--   4 RELEASED  the owner stopped declaring it: the target still holds the
--               recorded value; it is deleted at the end of the run unless
--               another component declares it first.
-- Invariant: whatever a run must still do to a target is written in the
-- store, in the same transaction as the component state that made it
-- necessary, before the target is touched. So a kill at any point leaves
-- rows that say what is unknown (an intent, 1, 2, 3) or still to delete
-- (4), and the next run starts from them (run.lua, Run:recover): the
-- states an intent names and 1 become 3 in one commit, every 3 forces its
-- owner to run again until the owner writes it,
-- and 2 and 4 are deleted again. Every target write is idempotent, so
-- doing a change twice is harmless, and a change is never forgotten.
--
-- A batch of submitted components is written in three steps: (1) the
-- components, their new target states (written 0, applied) and the states
-- they released (marked 4), with one intent per container naming the keys
-- of the states to upsert (the store's intents table), in one store
-- transaction; (2) once that commit is known, each container's upserts
-- applied to the target in one call (one target transaction): a batch
-- the run writes while components still run is applied when the next is
-- written, so that the store commits it meanwhile (M.flush: PostgreSQL
-- on its server, SQLite on its writer thread);
-- (3) the intents deleted (or, when an
-- apply failed, its states marked 1 in the same commit). The intent of a
-- whole batch is one row: marking each state 1 and then 0 would write
-- every state twice. A crash leaves the intent, and the next run first
-- turns every applied state it names into 3 (Run:recover). Released states
-- are deleted at the end of the run (marked 2, deleted, removed), so a
-- state moving between components in one run is one update, not a delete
-- and an insert.
local core = require "tide.core"
local sched = require "tide.sched"
local verify = require "tide.verify"
local sharemod = require "tide.share"
local target = require "tide.target"

local type, error, pairs, ipairs, tostring, pcall =
  type, error, pairs, ipairs, tostring, pcall
local fmt = string.format
local encode, decode = core.cbor_encode, core.cbor_decode
local fingerprint_raw = core.fingerprint_raw

local M = {}

-- Read-only stand-ins for what a frame never made (engine.lua, mount).
local EMPTY = {}
local NO_DEPS = { fns = {}, ctx = {} }
local NO_DEPS_FP = fingerprint_raw(NO_DEPS)
-- How many released states are read at once (M.delete_released).
local CHUNK = 1024

local APPLIED, PENDING_UPSERT, PENDING_DELETE, UNKNOWN, RELEASED =
  0, 1, 2, 3, 4
M.APPLIED, M.PENDING_UPSERT, M.PENDING_DELETE, M.UNKNOWN, M.RELEASED =
  APPLIED, PENDING_UPSERT, PENDING_DELETE, UNKNOWN, RELEASED

-- Whether a row's recorded value fingerprint is what the target holds.
local function holds_value(row)
  return row.pending == APPLIED or row.pending == RELEASED
end

local function describe_key(key)
  if type(key) == "table" and #key == 1 then key = key[1] end
  if type(key) == "string" then return fmt("%q", key) end
  local ok, s = pcall(function()
    return require("tide.json").encode(key)
  end)
  return ok and s or tostring(key)
end
M.describe_key = describe_key

-- Records one declared target state in the running component: one table
-- per state, { container, kb, key, value, fp } (submit adds what its diff
-- found: owned, write, take), which is also the change
-- handed to the target's apply ({ key, value }) when it must be written.
-- The run's claims (lclaims.c: a C map of (container, key bytes) to the
-- claiming path, kept for the whole run) find a key declared twice, by
-- this component or by two; the same call encodes the key and
-- fingerprints the value. task is the component's frame or a map item
-- working for it: its memoized calls record what they declare.
function M.declare(task, container, key, value, level)
  local frame = task.frame or task
  local path = frame.path
  local kb, fp = frame.run.claims:declare(container.id, key, value,
    container.key_what, container.value_what, path)
  if not kb then
    if fp == path then
      error(fmt("target key %s of %s declared twice by %s",
                describe_key(key), container.short, path), level + 1)
    end
    error(fmt("target key %s of %s declared by both %s and %s",
              describe_key(key), container.short, fp, path), level + 1)
  end
  -- Sized for the fields it may get (nil ones only size it): at most
  -- eight, since take is for a state it did not own, owned for one it did.
  -- Eight fit a table's smallest hash of that size; a ninth would double
  -- it (one such table per declared state).
  local d = { container = container, kb = kb, key = key, value = value,
              fp = fp, write = nil, frame = nil, owned = nil }
  local declared = frame.declared
  if not declared then
    frame.declared = { d }
  else
    declared[#declared + 1] = d
  end
  local stack = task.memo_stack
  local memo = stack and stack[#stack]
  if memo then
    memo.targets[#memo.targets + 1] =
      { container.kind, container.identity, key, value }
  end
end

-- Declares again a state a memo hit carries over, in the running task.
function M.declare_replayed(task, t)
  local container = task.run.containers[t[1] .. "\0" .. t[2]]
  if not container then
    error(fmt("a memoized call declared into %s %s, which this run has not "
              .. "declared", t[1], t[2]), 0)
  end
  M.declare(task, container, t[3], t[4], 1)
end

-- The state of most components, encoded once: one that returned nothing
-- (a memoized one) or whose value is not kept, and recorded no dependency.
local NO_VALUE_STATE = encode({ deps = NO_DEPS })
local NO_RESULTS_STATE = encode({ value = { n = 0 }, deps = NO_DEPS })

local function component_state(frame)
  local deps = frame.deps
  -- Only a memoized component's value is ever read back.
  local value = frame.fn.memo and frame.value or nil
  if deps == nil then
    if value == nil then return NO_VALUE_STATE end
    if value.n == 0 then return NO_RESULTS_STATE end
  end
  return encode({ value = value, deps = deps or NO_DEPS },
                frame.fn.result_what)
end

-- The rows the store committed for the states a component declares and
-- did not own (need: those declarations), as { [declaration] = row }. On
-- a store whose reads cross a connection (PostgreSQL), the components
-- that submit at about the same time read theirs together, a statement a
-- container: the first opens a wave, lets the tasks ready now run up to
-- their own submit (they join the wave and park), then reads every key
-- of the wave and wakes them. A component's declarations are new rows
-- more often than not (a file added), whose reads cannot be made ahead
-- as its owned states are (M.will_run). Elsewhere each is read alone.
local function committed_rows(run, need)
  local store, rows = run.store, {}
  if not run.remote_store or not sched.current() then
    for _, d in ipairs(need) do
      rows[d] = store:target_committed(d.container.id, d.kb) or false
    end
    return rows
  end
  local wave = sched.gather(run.sched, run, "rows_wave", function(group)
    local keys = group.keys or {}
    group.keys = keys
    for _, d in ipairs(need) do
      local cid = d.container.id
      local these = keys[cid]
      if not these then
        these = { seen = {} }
        keys[cid] = these
      end
      if not these.seen[d.kb] then
        these.seen[d.kb] = true
        these[#these + 1] = d.kb
      end
    end
  end, function(group)
    group.rows = {}
    for cid, keys in pairs(group.keys) do
      local found = {}
      group.rows[cid] = found
      for first = 1, #keys, CHUNK do
        local chunk = table.move(keys, first,
                                 math.min(first + CHUNK - 1, #keys), 1, {})
        for _, row in ipairs(store:targets_of_keys(cid, chunk, true)) do
          found[row.key] = row
        end
      end
    end
  end)
  for _, d in ipairs(need) do
    rows[d] = wave.rows[d.container.id][d.kb] or false
  end
  return rows
end

-- A component that ran before and is known to run again, mounted now:
-- on a store whose reads cross a connection, the states it owned are
-- read ahead with those of the others known so far, when the first of
-- them is diffed (M.submit; store.h).
function M.will_run(run, frame)
  if not run.remote_store then return end
  local ahead = run.read_ahead
  ahead[#ahead + 1] = frame.prev.id
end

-- The owners of states taken before they were recorded (M.submit), by
-- each of their ancestors' paths (run.taken_under): one of them carried
-- over still declares the state by its record, a conflict its carry-over
-- did not see.
local function note_taken_from(run, owner)
  local under, path = run.taken_under, owner:match("^(.*)/[^/]*$")
  while path and path ~= "" do
    local list = under[path]
    if not list then
      list = {}
      under[path] = list
    end
    list[#list + 1] = owner
    path = path:match("^(.*)/[^/]*$")
  end
end

local function carried_owner_below(run, path)
  local list = run.taken_under[path]
  for i = 1, list and #list or 0 do
    if run:seen(list[i]) == "unchanged" then return true end
  end
  return false
end

-- Diffs a component's declarations against what it owned and queues the
-- changes for the next batch. Raises (the component's error) when its
-- value cannot be stored or a declaration conflicts.
function M.submit(run, frame)
  local store = run.store
  -- The states of the components known to run again are read in one go
  -- with this one's (a round trip for many on PostgreSQL).
  local ahead = run.read_ahead
  if frame.prev and ahead[1] then
    run.read_ahead = {}
    store:targets_read_ahead(ahead)
  end
  -- Encoded here, in the component's own protected call, so that a value
  -- that cannot be stored fails this component only.
  frame.state_bytes = component_state(frame)
  -- The states it owned are diffed against those it declares in C
  -- (claims:diff), read as the store last committed them, without waiting
  -- for a batch in flight: what this run wrote since to those states
  -- (another component took or released them) or to a state it declares
  -- and did not own (another declared or released it) is in run.taken,
  -- run.released and the run's claims.
  local declared, released = frame.declared or EMPTY, nil
  local full = run.opts.full_reprocess
  local left = frame.prev and run.claims:diff(store, frame.prev.id, declared,
                                              full) or EMPTY
  -- A container created in this run holds no states yet.
  local need
  for i = 1, #declared do
    local d = declared[i]
    if not d.owned and not d.container.fresh then
      need = need or {}
      need[#need + 1] = d
    end
  end
  local rows = need and committed_rows(run, need) or EMPTY
  local owners
  for i = 1, #declared do
    local d = declared[i]
    if not d.owned then
      local container, kb = d.container, d.kb
      local write, take
      local row = rows[d]
      if row then
        -- A state its owner released (or a crash left being deleted) is
        -- free; otherwise an owner that keeps it is a conflict.
        if row.pending ~= RELEASED and row.pending ~= PENDING_DELETE then
          local owner = run:path_of(row.owner_id)
          local state = owner and run:seen(owner)
          if state == "unchanged" or state == "failed" then
            error(fmt("target key %s of %s declared by both %s and %s",
                      describe_key(d.key), container.short, owner,
                      frame.path), 0)
          end
          -- Taken from an owner this run has not recorded yet (one that
          -- recorded released it): its record is held open with this one
          -- (write_batch, owners_to_hold).
          if owner and owner ~= frame.path
             and not run.released[container.id][kb] then
            owners = owners or {}
            owners[#owners + 1] = owner
          end
        end
        if row.value_fp ~= d.fp or not holds_value(row) then
          write = "updated"
        end
        take = true
      else
        write = "inserted"
      end
      -- A full reprocess writes every declared state again, which repairs
      -- rows and files changed or deleted outside tide.
      if full and not write then write = "updated" end
      d.write, d.take = write, take
    end
  end
  -- Nothing can fail from here on: only now does the run learn what this
  -- component keeps and takes (a component that failed above changes
  -- nothing of it).
  for i = 1, #declared do
    local d = declared[i]
    local cid, kb = d.container.id, d.kb
    local released_here = run.released[cid]
    if released_here[kb] then released_here[kb] = nil end
    -- Taken from another component: that one must not release it if it
    -- submits later in this run.
    if d.take then run.taken[cid][kb] = frame.path end
    if run.verified then verify.declared(run, d.container, kb, d) end
  end
  -- The states it owned and no longer declares are released, unless a
  -- component that already submitted in this run took them over.
  for i = 1, #left do
    local row = left[i]
    local cid, kb = row.container_id, row.key
    local by = run.taken[cid][kb]
    if by == nil or by == frame.path then
      run.released[cid][kb] = true
      if row.pending ~= RELEASED and row.pending ~= PENDING_DELETE then
        released = released or {}
        released[#released + 1] = { cid = cid, kb = kb,
          fp = holds_value(row) and row.value_fp or nil }
      end
    end
  end
  -- Descendants it no longer mounts (it has waited for its children, so
  -- the others are marked by now) are deleted at the end of the run; until
  -- then it is recorded incomplete, so that a crash before that makes it
  -- run again rather than carry them over.
  if not frame.is_root and run.index:has_unseen_below(frame.path) then
    frame.shrunk = true
    run.shrunk[#run.shrunk + 1] = frame
    if run.share then require("tide.share").finish_later(run, frame) end
  end
  -- One carried over below it whose state another took in this run is
  -- held open (write_batch, owners_to_hold), and so is this one: recorded
  -- ok, it would carry that record over next time with its subtree.
  if not frame.is_root and carried_owner_below(run, frame.path) then
    frame.incomplete = true
  end
  for i = 1, owners and #owners or 0 do note_taken_from(run, owners[i]) end
  frame.released, frame.hold_owners = released, owners
  run.batch[#run.batch + 1] = frame
  -- A batch that holds the PostgreSQL store's memo lock alone (it sent
  -- memo entries before its commit, or deleted some) holds back every
  -- other process's commit until it ends: it commits with the next
  -- component submitted, not at its batch's end. A preview commits
  -- nothing.
  if #run.batch >= run.batch_size
     or run.remote_store and not run.opts.preview
        and store:holds_memo_lock() then
    M.flush(run, true)
  end
end

-- Records which memo entries the component uses now; those it used before
-- (old_refs, read by write_batch) and no longer does become candidates for
-- collection.
local function record_memo_refs(run, frame, id, old_refs)
  local store = run.store
  if old_refs then
    for _, k in ipairs(old_refs) do run.memo_candidates[k] = true end
    store:memo_refs_clear(id)
  end
  local cache = run.memo_hits
  for entry in pairs(frame.memos or EMPTY) do
    store:memo_ref_add(run.app_id, id, cache:key(entry))
  end
end

-- The containers a component declared are owned by it: when it runs again
-- without declaring one, or is deleted, the container is dropped.
local function record_container_owner(run, frame, id)
  local declared = frame.declared_containers
  if not declared then return end
  for c in pairs(declared) do
    if c.owner_id ~= id then
      run.store:container_update {
        id = c.id, spec = c.spec_bytes, owner_id = id,
        state = target.container_state(false, c.made or 0) }
      c.owner_id = id
    end
  end
end

-- Applies a batch's grouped changes ({ [container] = { changes } }) per
-- container, in order, into b.failed ({ [container] = message }). A type
-- that writes in the background (apply_send, apply_wait: sqlite.table, on
-- its connection's thread) is only sent its changes here, and listed in
-- b.background for finish_apply to wait for.
local function start_apply(run, b)
  local failed = {}
  b.failed = failed
  for _, container in ipairs(b.order) do
    local list, tt = b.groups[container], container.type
    if run.opts.preview then
      run:preview(container, list)
    elseif tt.apply_send then
      local ok, err = pcall(tt.apply_send, container.spec, list)
      if ok then
        b.background = b.background or {}
        b.background[#b.background + 1] = container
      else
        failed[container] = tostring(err)
      end
    else
      local ok, err = pcall(tt.apply, container.spec, list)
      if not ok then failed[container] = tostring(err) end
    end
  end
end

-- Waits for the changes start_apply sent to be written in the background.
local function wait_background(b)
  for _, container in ipairs(b.background or EMPTY) do
    local ok, err = pcall(container.type.apply_wait, container.spec)
    if not ok then b.failed[container] = tostring(err) end
  end
  b.background = nil
end

-- Applies grouped changes, each written before it returns; returns the
-- containers whose apply failed, with their messages.
local function apply_all(run, groups, order)
  local b = { groups = groups, order = order }
  start_apply(run, b)
  wait_background(b)
  return b.failed
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

-- Records a submitted component with a status; returns its row id. The
-- id it has already, or NEW_ID for one the store has not seen (the index
-- says which), lets the store record it without waiting (PostgreSQL for
-- its server, SQLite for its writer thread).
local NEW_ID = -1
local function put_component(run, frame, status)
  local fn, prev = frame.fn, frame.prev
  return run.store:component_record(run.app_id, frame.path, fn.name,
    fn._logic_raw or fn:logic_raw(), frame.input, frame.source_key,
    frame.state_bytes,
    frame.deps and fingerprint_raw(frame.deps) or NO_DEPS_FP, status,
    frame.id or prev and prev.id or NEW_ID)
end

-- After the end-of-run deletions: a component recorded incomplete only
-- because it no longer mounted some descendants is complete now.
function M.complete_shrunk(run)
  for _, frame in ipairs(run.shrunk) do
    if frame.id and not frame.incomplete and not frame.apply_failed then
      put_component(run, frame, 0)
    end
  end
end

-- Batches are written one at a time, in the order they were queued: a
-- batch's apply may wait (an fs.dir target writes on the thread pool),
-- and a task that flushes meanwhile waits for its turn, its slot given
-- up. Returns false outside a task while a batch is out, which only a
-- stopped run sees (its components are then recorded by a later run).
local function take_turn(run)
  if not run.flushing then
    run.flushing = true
    return true
  end
  local task = sched.current()
  if not task then return false end
  sched.wait_in_line(run.sched, run.flush_queue, task)
  return true -- handed over by pass_turn: run.flushing stays set
end

local function pass_turn(run)
  if not sched.wake_first(run.sched, run.flush_queue) then
    run.flushing = false
  end
end

local write_batch

-- Writes the queued batch: intents, apply, then marks applied. defer:
-- the batch's commit is sent but not waited for, and its changes are
-- applied when the next batch is written (or at the next flush without
-- defer), so that the components after it run while the store commits
-- it (on its server, or on its writer thread). Without defer, every batch written is applied on return.
function M.flush(run, defer)
  if #run.batch == 0 and (defer or not (run.unapplied or run.applying)) then
    return
  end
  if not take_turn(run) then return end
  -- Taken now: it holds what was queued while this task waited its turn.
  local batch = run.batch
  run.batch = {}
  local ok, err = pcall(write_batch, run, batch, defer)
  pass_turn(run)
  if not ok then error(err, 0) end
end

-- Once a started batch's changes are written (waiting for those written
-- in the background), queues in the store's open batch what follows: its
-- intents dropped, and the states whose apply failed marked pending.
local function finish_apply(run, b)
  local store, preview = run.store, run.opts.preview
  local worker = sharemod.is_worker(run)
  local groups, order = b.groups, b.order
  wait_background(b)
  local failed = b.failed
  for _, container in ipairs(order) do
    local err = failed[container]
    local list = groups[container]
    if err then
      -- The states become pending, in the commit that drops the intent;
      -- the changes are tried once more after the run's deletions (a file
      -- that becomes a folder needs the file gone first), and the
      -- components fail only if that fails too.
      for _, ch in ipairs(list) do
        store:target_put(container.id, ch.kb, ch.frame.id, ch.fp,
                         PENDING_UPSERT)
      end
      run.apply_failed[container.id] = true
      -- A worker counted them as it recorded them: they count once
      -- applied, as in one process (M.retry_failed).
      if worker then
        local t = run.stats.targets
        for _, ch in ipairs(list) do t[ch.write] = t[ch.write] - 1 end
      end
      local retry = run.retry[container]
      if not retry then
        retry = {}
        run.retry[container] = retry
        run.retry_order[#run.retry_order + 1] = container
      end
      for _, ch in ipairs(list) do retry[#retry + 1] = ch end
    elseif not worker then
      local t = run.stats.targets
      for _, ch in ipairs(list) do
        t[ch.write] = t[ch.write] + 1
      end
    end
    if not preview then
      local intent = b.intents[container]
      store:intent_delete(intent)
      -- A worker whose later batch is lost drops these again as it
      -- leaves (share.leave): applied in full, they would have the lead
      -- run their items once more.
      if not err and worker then
        local applied = run.share.applied_intents
        applied[#applied + 1] = intent
      end
    end
  end
  -- The intents are dropped in the next batch's commit (or the run's last):
  -- a crash before it costs only a rerun of this batch's owners.
end

local function apply_batch(run, b)
  start_apply(run, b)
  finish_apply(run, b)
end

-- The batch whose commit was sent last: once the store says it is
-- committed, its changes are applied. A failed commit raises, and its
-- changes are not applied (its intents were rolled back with it). The
-- batch before it, whose changes were being written in the background,
-- is finished first (a container's batches are written in order); with
-- defer, this one's background writes go on while the next components
-- run, and its intents are dropped a batch later.
local function apply_sent(run, defer)
  local b = run.unapplied
  run.unapplied = nil
  local writing = run.applying
  run.applying = nil
  if b then
    local ok, err = pcall(run.store.flush_wait, run.store)
    if not ok then
      -- The batch sent last was lost (a worker's, share.batch_lost): the
      -- one being applied, committed before it, is still finished (its
      -- changes waited for, its intents dropped), lest its items be
      -- taken for a crash's and run again.
      if writing then finish_apply(run, writing) end
      error(err, 0)
    end
  end
  if writing then finish_apply(run, writing) end
  if not b then return end
  start_apply(run, b)
  if defer and b.background then
    run.applying = b
  else
    finish_apply(run, b)
  end
end

-- The ancestors of a batch's components that ran again and are not
-- recorded yet, whose records still say ok (the previous run's): a crash
-- after this batch's commit and before theirs would leave them carried
-- over next time, with this batch's new descendants below them, which
-- would then stand for them if their input or code went back to what the
-- record says. Each is found once a run (frame.held_open, also set once
-- it is recorded: a component is recorded after its children). One that
-- failed is recorded failed already (Run:record_failure), which says more
-- than incomplete: its ancestors are held open above it.
local function ancestors_to_hold(batch)
  local list
  for b = 1, #batch do
    local a = batch[b].parent
    while a and not a.is_root and not a.held_open do
      a.held_open = true
      local prev = a.prev
      if prev and prev.status == 0 and not a.error then -- engine.STATUS_OK
        list = list or {}
        list[#list + 1] = a
      end
      a = a.parent
    end
  end
  return list
end

-- Marks incomplete, in the batch that records its first descendants, an
-- ancestor ancestors_to_hold found and the batch did not record, so that
-- it runs again until the run records it (its row is not read: only its
-- status changes, and only from ok).
local function hold_open(run, frame)
  run.store:component_hold(frame.prev.id, frame.path)
end

-- The rows ({ id, path }) of the components to hold open for the states
-- a batch's components take from owners this run has not recorded yet
-- (M.submit): the owner's and its ancestors', each once a run (run.held,
-- which only such owners join), as the index knows them (an owner is a
-- component of an earlier run, and so are its ancestors), or a worker's
-- store. The owner may be carried over later in the run, or not mounted
-- any more (deleted at its end), or run again and be killed before its
-- record: its record, which still says ok and no longer owns the state,
-- would be carried over next time, and the state deleted or overwritten
-- by its new owner's next change. The store marks only those whose rows
-- say ok (one this run recorded incomplete stays so; one it recorded ok
-- runs once more next time).
local function owners_to_hold(run, batch)
  local list, held = nil, run.held
  for b = 1, #batch do
    local owners = batch[b].hold_owners
    batch[b].hold_owners = nil
    for i = 1, owners and #owners or 0 do
      local path = owners[i]
      while path and path ~= "" and not held[path] do
        held[path] = true
        -- A worker's index holds only what is under its items.
        local prev = run.index:prev(path)
          or run.share and run.store:component(run.app_id, path)
        if prev and prev.status == 0 then -- engine.STATUS_OK
          list = list or {}
          list[#list + 1] = prev
        end
        path = path:match("^(.*)/[^/]*$")
      end
    end
  end
  return list
end

-- The failure that lost a batch of this run (the store rolled back its
-- writes: a disk full, a connection gone), or nil. One process records
-- nothing after it (write_batch): what that batch recorded is gone, and
-- the components recorded after it, their ancestors among them, would be
-- recorded ok over children whose records and changes are not there. The
-- next update does it again, as after a kill. A worker leaves its update
-- instead (share.lua, batch_lost).
function M.lost(run)
  local n, message = run.store:batches_lost()
  if n > run.lost0 then return message or "a batch was rolled back" end
  return nil
end

function write_batch(run, batch, defer)
  apply_sent(run, defer)
  if #batch == 0 then return end
  if not sharemod.is_worker(run) and M.lost(run) then return end
  local store, preview = run.store, run.opts.preview
  local groups, order = {}, {}
  local held = not preview and ancestors_to_hold(batch)
  local owners = not preview and owners_to_hold(run, batch)
  -- The memo entries the batch's components used before, read before the
  -- batch's first write: a read after it would run the writes queued so
  -- far on this thread, and wait for the store's writer (the SQLite
  -- store's queue), at every component. So is the rest of their previous
  -- rows (Run:keep_prev_row). All in one call: two statements on a
  -- PostgreSQL store, not two round trips a component.
  local old_refs, ids = {}, {}
  for b = 1, #batch do
    local frame = batch[b]
    local prev = frame.prev
    if prev then
      ids[#ids + 1] = prev.id
      if frame.id and frame.id ~= prev.id then ids[#ids + 1] = frame.id end
    end
  end
  if #ids > 0 then
    local states, refs = store:components_before(ids)
    for b = 1, #batch do
      local frame = batch[b]
      if frame.prev then
        run:keep_prev_row(frame, states)
        old_refs[b] = refs[frame.id or frame.prev.id] or {}
      end
    end
  end
  -- Before the batch's records: an owner the batch records writes its
  -- own over it.
  for i = 1, owners and #owners or 0 do
    store:component_hold(owners[i].id, owners[i].path)
  end
  -- A worker counts what it records, in the batch that records it
  -- (share.send_counts); one process counts as it goes.
  local worker = sharemod.is_worker(run)
  local counted = run.stats.components
  for b = 1, #batch do
    local frame = batch[b]
    local id = put_component(run, frame,
      (frame.incomplete or frame.shrunk) and 2 or 0) -- engine.STATUS_*
    frame.id, frame.held_open = id, true
    if frame.count_as then
      counted[frame.count_as] = counted[frame.count_as] + 1
      frame.count_as = nil
    end
    -- A shared update's item is done in the batch that records it, or
    -- run, when its worker's end must finish it (share.finish_later).
    local item = frame.work_item
    frame.item_marked = item ~= nil
    if item and frame.finish_later then
      store:work_ran(item, run.share.worker_id)
      local ran = run.share.ran_items
      ran[#ran + 1] = item
    elseif item then
      store:work_done(item, run.share.worker_id)
    end
    record_memo_refs(run, frame, id, old_refs[b])
    record_container_owner(run, frame, id)
    -- Released in the same transaction as the component's new state, so a
    -- crash cannot forget to delete them.
    local released = frame.released
    if released then
      for _, r in ipairs(released) do
        store:target_put(r.cid, r.kb, id, r.fp, RELEASED)
      end
      frame.released = nil
    end
    -- Written applied: the batch's intent (below) says which of them the
    -- target may not hold yet. A preview applies nothing: what it would
    -- write stays pending (verify.lua counts it out of date).
    local declared = frame.declared or EMPTY
    for i = 1, #declared do
      local d = declared[i]
      local write = d.write
      if write and preview then
        store:target_put(d.container.id, d.kb, id, d.fp, PENDING_UPSERT)
      else
        store:target_put(d.container.id, d.kb, id, d.fp, APPLIED,
                         write ~= nil)
      end
      if write then
        d.frame = frame
        group(groups, order, d.container, d)
        if worker then
          run.stats.targets[write] = run.stats.targets[write] + 1
        end
      end
    end
    -- What only the submit needed is not kept while a parent waits.
    frame.declared, frame.args = nil, nil
    if not frame.shrunk then frame.state_bytes = nil end
  end
  for i = 1, held and #held or 0 do
    local frame = held[i]
    -- Not recorded by this batch (held_open is then its record's), nor
    -- failed since.
    if not frame.id and not frame.error then hold_open(run, frame) end
  end
  if worker then sharemod.send_counts(run) end
  -- One intent per container: the keys of the states about to be
  -- written, committed with them.
  local sent = { groups = groups, order = order, intents = {} }
  if preview then
    apply_batch(run, sent)
    return
  end
  for _, container in ipairs(order) do
    local list, kbs = groups[container], {}
    for i = 1, #list do kbs[i] = list[i].kb end
    sent.intents[container] = store:intent_add(run.app_id, container.id,
                                               encode(kbs))
  end
  if defer then
    store:flush_send()
    run.unapplied = sent
  else
    store:flush()
    apply_batch(run, sent)
  end
end

-- Applies once more the changes whose apply failed in this run (after
-- the deletions); a failure now fails their components, whose states stay
-- pending so that the next run redoes them.
-- The changes of list, by the component that declared them, in order.
local function by_component(list)
  local lists, frames = {}, {}
  for _, ch in ipairs(list) do
    local own = lists[ch.frame]
    if not own then
      own = {}
      lists[ch.frame] = own
      frames[#frames + 1] = ch.frame
    end
    own[#own + 1] = ch
  end
  return lists, frames
end

-- Applies list to container once more: true when written, its states
-- then marked applied and counted; else false and the message.
local function reapply(run, container, list)
  local ok, err = pcall(container.type.apply, container.spec, list)
  if not ok then return false, tostring(err) end
  local t = run.stats.targets
  for _, ch in ipairs(list) do
    t[ch.write] = t[ch.write] + 1
    run.store:target_mark_applied(container.id, ch.kb)
  end
  return true
end

function M.retry_failed(run)
  local store = run.store
  for _, container in ipairs(run.retry_order) do
    local list = run.retry[container]
    local ok, err = reapply(run, container, list)
    if not ok then
      -- One component's change fails the whole batch (a table's batch is
      -- one transaction; a folder's stops at the file that cannot be
      -- written): with more than one component in it, each one's changes
      -- are tried alone, so that only those whose own cannot be written
      -- fail, with their own message.
      local lists, frames = by_component(list)
      for _, frame in ipairs(frames) do
        if #frames > 1 then ok, err = reapply(run, container, lists[frame]) end
        if not ok and not frame.apply_failed then
          frame.apply_failed = true
          run:component_failed(frame, fmt("writing to %s failed: %s",
                                          container.short, err))
        end
      end
    end
  end
  if #run.retry_order > 0 then store:flush() end
end

-- Deletes released states (end of run): marked pending first, then
-- deleted from the target, then removed from the store.
function M.delete_released(run)
  local store = run.store
  local groups, order = {}, {}
  for cid, per in pairs(run.released) do
    local container, keys = nil, {}
    for kb in pairs(per) do keys[#keys + 1] = kb end
    -- Those still in the store, a chunk at a time (on PostgreSQL one
    -- statement a chunk, not a round trip a state).
    for first = 1, #keys, CHUNK do
      local chunk = table.move(keys, first,
                               math.min(first + CHUNK - 1, #keys), 1, {})
      for _, row in ipairs(store:targets_of_keys(cid, chunk)) do
        local kb = row.key
        container = container or run:container_by_id(cid)
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
                       .. " failed: " .. failed[container], "target")
    else
      run.stats.targets.deleted = run.stats.targets.deleted
        + #groups[container]
      mark_applied(run, container, groups[container])
    end
  end
  if not run.opts.preview then store:flush() end
end

return M
