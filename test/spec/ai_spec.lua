-- tide.http and tide.ai against a real HTTP server on 127.0.0.1
-- (test/server/model_server.lua): requests, failures, retries, batching,
-- rate limits, memoization by model, secrets, chat and typed extraction.
local helpers = require "test.spec.helpers"
local model_helpers = require "test.spec.model_helpers"
local tide = require "tide"
local ai = require "tide.ai"
local cjson = require "cjson"

local q = helpers.q
local KEY = "sk-test-5ecret-Kq7Zt0p"

local server

setup(function() server = model_helpers.start("--dims 8") end)
teardown(function() server.stop(); helpers.cleanup() end)
before_each(function() server.reset() end)

-- Runs `tide update --json` in dir with env; returns the report, stderr
-- and the exit status.
local function update(dir, env)
  local out, err, code = helpers.run(("cd %s && %s %s update pipeline.lua "
    .. "--json"):format(q(dir), env or "", helpers.tide))
  return out ~= "" and cjson.decode(out) or nil, err, code, out
end

local function rows(dir, sql)
  local out = helpers.run(("sqlite3 %s %s"):format(q(dir .. "/out.db"),
                                                   q(sql)))
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

-- A pipeline embedding every docs/*.txt file with the options given (a
-- Lua table constructor's inside), one row per file.
local function embed_pipeline(dir, options)
  helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local fs = require "tide.fs"
local ai = require "tide.ai"
local sqlite = require "tide.sqlite"
local embed = ai.embedder{ url = %q, %s }
local Row = tide.record("Row", { { "path", "string", key = true },
                                 { "v", tide.vector(8) } })
local index = tide.fn("index", function(file, t)
  t:row(Row{ path = file.path, v = embed(file:text()) })
end)
return tide.app("emb", function()
  local t = sqlite.table{ db = "out.db", name = "rows", schema = Row }
  tide.mount_each(index, fs.walk("docs"), t)
end)
]]):format(server.url .. "/v1", options))
end

local function docs(dir, n, prefix)
  for i = 1, n do
    helpers.write(("%s/docs/d%02d.txt"):format(dir, i),
                  (prefix or "text") .. " number " .. i)
  end
end

describe("tide.http.request", function()
  it("posts a body with headers and returns status, headers and body",
     function()
    local r = assert(tide.http.request{ method = "POST",
      url = server.url .. "/v1/embeddings",
      headers = { ["Content-Type"] = "application/json",
                  Authorization = "Bearer abc" },
      body = '{"model":"m","input":["a","b"]}' })
    assert.are.equal(200, r.status)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.equal(tostring(#r.body), r.headers["content-length"])
    local answer = cjson.decode(r.body)
    assert.are.equal(2, #answer.data)
    local s = server.stats()
    assert.are.same({ 2 }, s.batches)
    assert.are.same({ "Bearer abc" }, s.auth)
  end)

  it("returns a response whatever its status", function()
    local r = assert(tide.http.request{ url = server.url .. "/nowhere" })
    assert.are.equal(404, r.status)
    assert.truthy(r.body:find("no such endpoint", 1, true))
  end)

  it("names the failure and its kind, without user, password or query",
     function()
    local r, err, kind = tide.http.request{
      url = "http://joe:pa55word@127.0.0.1:1/x?api_key=s3cr3t", timeout = 5 }
    assert.is_nil(r)
    assert.are.equal("connect", kind)
    assert.truthy(err:find("^tide%.http: GET http://127%.0%.0%.1:1/x: "))
    assert.is_nil(err:find("pa55word", 1, true))
    assert.is_nil(err:find("s3cr3t", 1, true))
  end)

  it("gives up after its timeout", function()
    server.faults{ { delay_ms = 2000 } }
    local r, err, kind = tide.http.request{ method = "POST",
      url = server.url .. "/v1/embeddings", body = '{"input":"x"}',
      timeout = 0.2 }
    assert.is_nil(r)
    assert.are.equal("timeout", kind)
    assert.truthy(err:find("timed out", 1, true), err)
  end)

  it("caps the response size", function()
    local r, err, kind = tide.http.request{ url = server.url .. "/nowhere",
                                            max_size = 8 }
    assert.is_nil(r)
    assert.are.equal("too_large", kind)
    assert.truthy(err:find("larger than 8 bytes", 1, true))
  end)

  it("reports a connection the server resets", function()
    server.faults{ { reset = true } }
    local r, _, kind = tide.http.request{ method = "POST",
      url = server.url .. "/v1/embeddings", body = '{"input":"x"}' }
    assert.is_nil(r)
    assert.are.equal("reset", kind)
  end)

  it("refuses misuse with a message", function()
    assert.has_error(function() tide.http.request{ url = server.url,
      retries = 3 } end, "tide.http.request: unknown option retries")
    assert.has_error(function() tide.http.request{} end,
                     "tide.http.request: url is needed")
    assert.has_error(function() tide.http.request{ url = server.url,
      headers = { X = "a\r\nInjected: 1" } } end,
      "tide.http.request: header X holds a line break or a NUL byte")
    assert.has_error(function() tide.http.request{ url = server.url,
      timeout = -1 } end,
      "tide.http.request: timeout must be a positive number of seconds")
  end)

  it("refuses schemes other than http and https", function()
    local r, err = tide.http.request{ url = "file:///etc/passwd" }
    assert.is_nil(r)
    assert.truthy(err:find("tide.http: GET file:///etc/passwd: ", 1, true))
  end)

  it("goes through the proxy the environment names", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/get.lua", [[
local tide = require "tide"
local r = assert(tide.http.request{ method = "POST",
  url = "http://models.invalid/v1/embeddings", body = '{"input":"x"}' })
print(r.status)
]])
    local out, err, code = helpers.run(("http_proxy=%s no_proxy= %s run %s")
      :format(server.url, helpers.tide, q(dir .. "/get.lua")))
    assert.are.equal(0, code, err)
    assert.are.equal("200\n", out)
    local s = server.stats()
    assert.are.equal(1, s.proxied)
    assert.are.same({ 1 }, s.batches)
  end)

  it("overlaps the requests of concurrent components", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local fs = require "tide.fs"
local items = {}
for i = 1, 8 do items["k" .. i] = "text " .. i end
local fetch = tide.fn("fetch", function(t, out)
  local r = assert(tide.http.request{ method = "POST", url = %q,
                   body = '{"model":"m","input":"' .. t .. '"}' })
  out:file(t:gsub(" ", "_") .. ".json", r.body)
end)
return tide.app("h", function()
  tide.mount_each(fetch, items, fs.dir("out"))
end)
]]):format(server.url .. "/v1/embeddings"))
    server.faults{ { delay_ms = 300 }, { delay_ms = 300 }, { delay_ms = 300 },
                   { delay_ms = 300 }, { delay_ms = 300 }, { delay_ms = 300 },
                   { delay_ms = 300 }, { delay_ms = 300 } }
    local report, err = update(dir)
    assert.are.equal(8, report.targets.inserted, err)
    local s = server.stats()
    assert.are.equal(8, s.requests)
    -- Every request was waiting at the server at the same time.
    assert.are.equal(8, s.max_inflight)
  end)
end)

describe("ai.embedder", function()
  it("batches callers' texts: exact requests and batch sizes", function()
    local dir = helpers.tmpdir()
    docs(dir, 10)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 4')
    local report, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(10, report.targets.inserted)
    local s = server.stats()
    assert.are.same({ 4, 4, 2 }, s.batches)
    assert.are.equal(3, s.requests)
    assert.are.same({ "/v1/embeddings", "/v1/embeddings", "/v1/embeddings" },
                    s.paths)
    local f = report.functions.embed_m1
    assert.are.same({ 10, 10, 0 }, { f.calls, f.misses, f.hits })
    -- The vectors are the server's, stored as float32.
    local one = rows(dir, "SELECT hex(v) FROM rows WHERE path = 'd01.txt'")
    assert.are.equal(64, #one[1])
  end)

  it("runs up to concurrency batches at once", function()
    local dir = helpers.tmpdir()
    docs(dir, 16)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 2, concurrency = 4')
    server.faults{ { delay_ms = 200 }, { delay_ms = 200 }, { delay_ms = 200 },
                   { delay_ms = 200 }, { delay_ms = 200 }, { delay_ms = 200 },
                   { delay_ms = 200 }, { delay_ms = 200 } }
    local report, err = update(dir)
    assert.are.equal(16, report.targets.inserted, err)
    local s = server.stats()
    local total = 0
    for _, n in ipairs(s.batches) do
      assert.is_true(n <= 2)
      total = total + n
    end
    assert.are.equal(16, total)
    assert.are.equal(4, s.max_inflight)
  end)

  it("re-embeds every text when the model changes and none on a comment "
     .. "edit", function()
    local dir = helpers.tmpdir()
    docs(dir, 6)
    embed_pipeline(dir, 'model = "m1", dims = 8')
    assert.are.equal(6, update(dir).targets.inserted)
    local before = rows(dir, "SELECT path, hex(v) FROM rows ORDER BY path")
    server.reset()
    -- A comment edit: the pipeline's components run again, every embedding
    -- is a memo hit.
    helpers.write(dir .. "/pipeline.lua",
                  helpers.read(dir .. "/pipeline.lua") .. "-- a comment\n")
    local report = update(dir)
    assert.are.equal(6, report.functions.embed_m1.hits)
    assert.are.equal(0, server.stats().requests)
    assert.are.same(before, rows(dir, "SELECT path, hex(v) FROM rows "
                                      .. "ORDER BY path"))
    -- A new model: every text is embedded again, every row changes.
    embed_pipeline(dir, 'model = "m2", dims = 8')
    report = update(dir)
    assert.are.equal(6, report.functions.embed_m2.misses)
    assert.are.equal(6, report.targets.updated)
    local s = server.stats()
    local texts = 0
    for _, n in ipairs(s.batches) do texts = texts + n end
    assert.are.equal(6, texts)
    for _, m in ipairs(s.models) do assert.are.equal("m2", m) end
  end)

  it("waits out a 429 with Retry-After and retries", function()
    local dir = helpers.tmpdir()
    docs(dir, 3)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 8, '
                   .. 'retry = { initial_delay = 0.01 }')
    server.faults{ { status = 429, retry_after = 1 } }
    local t0 = os.time()
    local report, err = update(dir)
    local t1 = os.time()
    assert.are.equal(3, report.targets.inserted, err)
    assert.are.equal(2, server.stats().requests)
    -- The second request came after the server's second, not the backoff's
    -- 10 ms (whole seconds: os.time; 1 s at least passed).
    assert.is_true(report.elapsed_ms >= 1000, report.elapsed_ms)
    assert.is_true(t1 - t0 >= 1)
  end)

  it("waits out a Retry-After given as an HTTP date", function()
    local dir = helpers.tmpdir()
    docs(dir, 2)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 8, '
                   .. 'retry = { initial_delay = 0.01 }')
    server.faults{ { status = 429, retry_after_date = 2 } }
    local report, err = update(dir)
    assert.are.equal(2, report.targets.inserted, err)
    assert.are.equal(2, server.stats().requests)
    -- The date is whole seconds, 2 ahead: at least 1 s was waited.
    assert.is_true(report.elapsed_ms >= 1000, report.elapsed_ms)
  end)

  it("retries 500s, resets, timeouts and malformed answers", function()
    local dir = helpers.tmpdir()
    docs(dir, 2)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 8, timeout = 0.5, '
                   .. 'retry = { initial_delay = 0.01, max_delay = 0.02 }')
    server.faults{ { status = 500 }, { reset = true }, { delay_ms = 1500 },
                   { malformed = true }, { status = 503 } }
    local report, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, report.targets.inserted)
    assert.are.equal(6, server.stats().requests)
  end)

  it("fails after its attempts, naming the last failure", function()
    local dir = helpers.tmpdir()
    docs(dir, 1)
    embed_pipeline(dir, 'model = "m1", dims = 8, '
                   .. 'retry = { attempts = 3, initial_delay = 0.01 }')
    server.faults{ { status = 500 }, { status = 502 }, { status = 503 } }
    local report, err = update(dir)
    assert.are.equal(1, report.components.errors)
    assert.truthy(err:find("ai.embedder m1: POST " .. server.url
      .. "/v1/embeddings: HTTP 503: injected (after 3 attempts)", 1, true), err)
    assert.are.equal(3, server.stats().requests)
  end)

  it("says one attempt in the singular", function()
    local dir = helpers.tmpdir()
    docs(dir, 1)
    embed_pipeline(dir, 'model = "m1", dims = 8, retry = false')
    server.faults{ { status = 500 } }
    local report, err = update(dir)
    assert.are.equal(1, report.components.errors)
    assert.truthy(err:find("/v1/embeddings: HTTP 500: injected (after 1 "
      .. "attempt)\n", 1, true), err)
    assert.are.equal(1, server.stats().requests)
  end)

  it("fails only the component whose text the server refuses", function()
    local dir = helpers.tmpdir()
    docs(dir, 7)
    helpers.write(dir .. "/docs/d04.txt", "this one will FAIL")
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 8')
    local report, err, code = update(dir)
    assert.are.equal(1, code)
    assert.are.equal(1, report.components.errors)
    assert.are.equal(6, report.targets.inserted)
    assert.truthy(err:find("component /index/d04.txt failed: ai.embedder m1: "
      .. "POST " .. server.url .. "/v1/embeddings: HTTP 400: input refused",
      1, true), err)
    assert.are.same({ "d01.txt", "d02.txt", "d03.txt", "d05.txt", "d06.txt",
                      "d07.txt" }, rows(dir, "SELECT path FROM rows ORDER BY path"))
    -- 7 texts, split in halves down to the one refused: 7 -> 4 + 3, the
    -- 4 -> 2 + 2, the 2 holding it -> 1 + 1: seven requests.
    local sizes = server.stats().batches
    table.sort(sizes)
    assert.are.same({ 1, 1, 2, 2, 3, 4, 7 }, sizes)
  end)

  it("keeps the vectors a failing component was given: the next run asks "
     .. "only for the text refused", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/doc.txt", "one\ntwo\nthis will FAIL\nfour\nfive")
    helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local ai = require "tide.ai"
local sqlite = require "tide.sqlite"
local embed = ai.embedder{ url = %q, model = "m1", dims = 8, batch = 2,
                           retry = false }
local Row = tide.record("Row", { { "line", "string", key = true },
                                 { "v", tide.vector(8) } })
local index = tide.fn("index", function(path, t)
  local f = assert(io.open(path))
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  local vectors = tide.map(embed, lines)
  for i, line in ipairs(lines) do t:row(Row{ line = line, v = vectors[i] }) end
end)
return tide.app("emb", function()
  local t = sqlite.table{ db = "out.db", name = "rows", schema = Row }
  tide.mount_each(index, { doc = "doc.txt" }, t)
end)
]]):format(server.url .. "/v1"))
    local report, err, code = update(dir)
    assert.are.equal(1, code, err)
    assert.are.equal(1, report.components.errors)
    assert.are.same({ calls = 5, hits = 0, misses = 5, errors = 1 },
                    report.functions.embed_m1)
    -- Still refused: the four vectors it had are hits, one request goes.
    server.reset()
    report, err, code = update(dir)
    assert.are.equal(1, code, err)
    assert.are.same({ calls = 5, hits = 4, misses = 1, errors = 1 },
                    report.functions.embed_m1)
    assert.are.same({ 1 }, server.stats().batches)
    -- Fixed: the last text is asked for, and the others are still hits.
    helpers.write(dir .. "/doc.txt", "one\ntwo\nthis works\nfour\nfive")
    server.reset()
    report, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ calls = 5, hits = 4, misses = 1, errors = 0 },
                    report.functions.embed_m1)
    assert.are.equal(5, #rows(dir, "SELECT line FROM rows"))
  end)

  it("fails a batch refused for its key or URL without splitting it",
     function()
    local dir = helpers.tmpdir()
    docs(dir, 7)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 4, '
                   .. 'retry = { attempts = 1 }')
    local faults = {}
    for i = 1, 8 do faults[i] = { status = i % 2 == 0 and 403 or 401 } end
    server.faults(faults)
    local report, err, code = update(dir)
    assert.are.equal(1, code)
    assert.are.equal(7, report.components.errors)
    assert.truthy(err:find("HTTP 401: injected", 1, true), err)
    -- One request a batch (4 + 3), none split.
    local sizes = server.stats().batches
    table.sort(sizes)
    assert.are.same({ 3, 4 }, sizes)
  end)

  it("keeps the query of its url after the endpoint's path", function()
    local dir = helpers.tmpdir()
    docs(dir, 2)
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 4')
    helpers.write(dir .. "/pipeline.lua", (helpers.read(dir
      .. "/pipeline.lua"):gsub('/v1"', '/v1/?api-version=2024-02"')))
    local _, err, code = update(dir)
    assert.are.equal(0, code, err)
    local s = server.stats()
    assert.are.same({ "/v1/embeddings" }, s.paths)
    assert.are.same({ "api-version=2024-02" }, s.queries)
  end)

  it("speaks Ollama's /api/embed", function()
    local dir = helpers.tmpdir()
    docs(dir, 3)
    helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local ai = require "tide.ai"
local fs = require "tide.fs"
local embed = ai.embedder{ url = %q, api = "ollama", model = "nomic-embed-text",
                           dims = 8, batch = 16 }
return tide.app("ol", function()
  local out = fs.dir("out")
  for key, file in fs.walk("docs"):items() do
    out:file(key .. ".json", require("tide.json").encode(embed(file:text())))
  end
end)
]]):format(server.url))
    local _, err, code = update(dir)
    assert.are.equal(0, code, err)
    local s = server.stats()
    assert.are.same({ "/api/embed", "/api/embed", "/api/embed" }, s.paths)
    local v = cjson.decode(helpers.read(dir .. "/out/d01.txt.json"))
    assert.are.equal(8, #v)
  end)

  it("keeps a secret of the URL out of a server's message that quotes it",
     function()
    local dir = helpers.tmpdir()
    docs(dir, 1)
    helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local fs = require "tide.fs"
local ai = require "tide.ai"
local embed = ai.embedder{ url = %q, model = "m1", dims = 8, retry = false }
local index = tide.fn("index", function(file, out)
  out:file(file.path .. ".json", tide.json.encode(embed(file:text())))
end)
return tide.app("emb", function()
  tide.mount_each(index, fs.walk("docs"), fs.dir("out"))
end)
]]):format(server.url .. "/v1?key=Qs3cret%%21Value&api-version=2"))
    server.faults{ { echo_query = true } }
    local report, err, _, raw = update(dir)
    assert.are.equal(1, report.components.errors)
    assert.truthy(err:find("HTTP 401: no access for key=***&api-version=***",
                           1, true), err)
    local store = helpers.read(dir .. "/.tide/state.db") .. (helpers.read(
      dir .. "/.tide/state.db-wal") or "")
    for _, text in ipairs { err, raw, store } do
      assert.is_nil(text:find("s3cret", 1, true))
    end
  end)

  it("keeps the API key out of the store, the report and every message",
     function()
    local dir = helpers.tmpdir()
    docs(dir, 4)
    embed_pipeline(dir, 'model = "m1", dims = 8, api_key_env = "TEST_KEY", '
                   .. 'retry = { attempts = 1 }')
    local env = "TEST_KEY=" .. KEY
    local report, err, code, raw = update(dir, env)
    assert.are.equal(0, code, err)
    assert.are.equal(4, report.targets.inserted)
    assert.are.same({ "Bearer " .. KEY }, server.stats().auth)
    -- A server that quotes the key back in its refusal.
    helpers.write(dir .. "/docs/d05.txt", "new text")
    server.faults{ { echo_auth = true } }
    local report2, err2, _, raw2 = update(dir, env)
    assert.are.equal(1, report2.components.errors)
    assert.truthy(err2:find("HTTP 401: invalid key ***", 1, true), err2)
    -- Quoted where the message is cut (300 bytes): masked all the same.
    server.faults{ { echo_auth = true, pad = 270 } }
    local report3, err4, _, raw3 = update(dir, env)
    assert.are.equal(1, report3.components.errors)
    assert.truthy(err4:find("xxinvalid key ***", 1, true), err4)
    local shown = helpers.run(("cd %s && %s show pipeline.lua --json")
      :format(q(dir), helpers.tide))
    -- A key that is not set is named by its variable only.
    local _, err3 = update(dir, "TEST_KEY=")
    assert.truthy(err3:find("the environment variable TEST_KEY "
                            .. "(api_key_env) is not set", 1, true), err3)
    local found = {}
    for _, bytes in ipairs { raw, err, raw2, err2, err3, raw3, err4, shown,
        helpers.read(dir .. "/.tide/state.db") or "",
        helpers.read(dir .. "/.tide/state.db-wal") or "",
        helpers.read(dir .. "/out.db") or "" } do
      if bytes:find(KEY, 1, true) then found[#found + 1] = true end
    end
    assert.are.equal(0, #found)
    local files = helpers.run("ls -a " .. q(dir .. "/.tide"))
    assert.truthy(files:find("state.db", 1, true))
  end)

  it("paces requests under requests_per_minute", function()
    local dir = helpers.tmpdir()
    docs(dir, 12)
    -- 600 a minute: 10 a second, a bucket of 10; 12 requests of one text
    -- take at least 0.2 s.
    embed_pipeline(dir, 'model = "m1", dims = 8, batch = 1, concurrency = 12, '
                   .. 'rate = { requests_per_minute = 600 }')
    local report, err = update(dir)
    assert.are.equal(12, report.targets.inserted, err)
    assert.are.equal(12, server.stats().requests)
    assert.is_true(report.elapsed_ms >= 190, report.elapsed_ms)
  end)

  it("checks the vectors' dimensions", function()
    local dir = helpers.tmpdir()
    docs(dir, 1)
    embed_pipeline(dir, 'model = "m1", dims = 8, options = { dimensions = 5 }')
    local report, err = update(dir)
    assert.are.equal(1, report.components.errors)
    assert.truthy(err:find("vector 1 has 5 numbers, the embedder was "
                           .. "declared with dims = 8", 1, true), err)
  end)

  it("refuses unknown options and bad values", function()
    assert.has_error(function() ai.embedder{ url = server.url, model = "m",
      batchsize = 3 } end, "ai.embedder: unknown option batchsize")
    assert.has_error(function() ai.embedder{ url = "localhost", model = "m" }
      end, "ai.embedder: url must be an http:// or https:// URL")
    assert.has_error(function() ai.embedder{ url = server.url, model = "m",
      rate = { rpm = 3 } } end, "ai.embedder: unknown rate option rpm")
    assert.has_error(function() ai.embedder{ url = server.url, model = "m",
      dims = 0 } end, "ai.embedder m: dims must be a positive integer")
  end)

  it("embeds outside a component with a plain call", function()
    local embed = ai.embedder{ url = server.url .. "/v1", model = "m1",
                               dims = 8 }
    local v = embed("hello")
    assert.are.equal(8, #v)
    assert.are.same({ 1 }, server.stats().batches)
  end)
end)

describe("ai.chat and ai.extract", function()
  local Person = tide.record("Person", {
    { "name", "string" },
    { "age", "integer" },
    { "email", tide.optional("string") },
    { "tags", tide.list("string") },
  })

  it("answers a prompt, memoized by model and prompt", function()
    local chat = ai.chat{ url = server.url .. "/v1", model = "c1",
                          system = "Be brief." }
    server.replies{ "Hello there." }
    assert.are.equal("Hello there.", chat("Say hello"))
    local s = server.stats()
    assert.are.same({ "/v1/chat/completions" }, s.paths)
    local body = cjson.decode(s.bodies[1])
    assert.are.same({ { role = "system", content = "Be brief." },
                      { role = "user", content = "Say hello" } },
                    body.messages)
  end)

  it("extracts a record checked against its type", function()
    local chat = ai.chat{ url = server.url .. "/v1", model = "c1" }
    server.replies{ cjson.encode({ name = "Ada", age = 36,
                                   email = cjson.null, tags = { "math" } }) }
    local p = ai.extract(Person, "Ada, 36, likes math",
                         { chat = chat, instructions = "Find the person." })
    assert.are.equal(Person, getmetatable(p).__tide_type)
    assert.are.same({ "Ada", 36, nil, "math" },
                    { p.name, p.age, p.email, p.tags[1] })
    -- The request asked for the type's JSON schema.
    local body = cjson.decode(server.stats().bodies[1])
    local schema = body.response_format.json_schema.schema
    assert.are.equal("json_schema", body.response_format.type)
    assert.are.same({ "name", "age", "email", "tags" }, schema.required)
    assert.are.equal("integer", schema.properties.age.type)
    assert.is_false(schema.additionalProperties)
    assert.truthy(body.messages[1].content:find("Find the person.", 1, true))
  end)

  it("rejects an answer that does not fit the type, naming the field",
     function()
    local chat = ai.chat{ url = server.url .. "/v1", model = "c2" }
    server.replies{ cjson.encode({ name = "Ada", age = "old", tags = {} }) }
    local ok, err = pcall(ai.extract, Person, "Ada is old", { chat = chat })
    assert.is_false(ok)
    assert.truthy(err:find("ai.extract Person: the model's answer does not "
                           .. "fit the type: ", 1, true), err)
    assert.truthy(err:find("Person.age: expected integer, got string", 1,
                           true), err)
    server.replies{ "not json at all" }
    ok, err = pcall(ai.extract, Person, "Bob", { chat = chat })
    assert.is_false(ok)
    assert.truthy(err:find("ai.extract Person: the model's answer is not a "
                           .. "JSON object", 1, true), err)
  end)
end)

describe("ai.hash_embedder", function()
  local function cosine(a, b)
    local s = 0
    for i = 1, #a do s = s + a[i] * b[i] end
    return s
  end

  it("maps a text to a unit vector of dims numbers, with no model",
     function()
    local embed = ai.hash_embedder { dims = 64 }
    local v = embed("the quick brown fox")
    assert.are.equal(64, #v)
    assert.is_true(math.abs(cosine(v, v) - 1) < 1e-6)
    assert.are.same(v, embed("the quick brown fox"))
    -- Lexical similarity: shared words and subwords score higher.
    local near = cosine(v, embed("a quick brown dog"))
    local far = cosine(v, embed("sqlite write-ahead log checkpoint"))
    assert.is_true(near > far + 0.2, near .. " vs " .. far)
    assert.are.equal(0, cosine(embed(""), embed("")))
  end)

  it("refuses bad dims and non-strings", function()
    assert.has_error(function() ai.hash_embedder { dims = 0 } end,
                     "ai.hash_embedder: dims must be an integer from 1 to "
                     .. "65536")
    assert.has_error(function() ai.hash_embedder { size = 3 } end,
                     "ai.hash_embedder: unknown option size")
    local embed = ai.hash_embedder { dims = 8 }
    assert.has_error(function() embed(42) end,
                     "ai.hash_embedder: expected a string to embed, got "
                     .. "number")
  end)

  it("joins its dims to the logic fingerprint", function()
    local a = ai.hash_embedder { dims = 8, name = "h" }
    local b = ai.hash_embedder { dims = 16, name = "h" }
    local c = ai.hash_embedder { dims = 8, name = "h" }
    assert.are_not.equal(a:logic(), b:logic())
    assert.are.equal(a:logic(), c:logic())
  end)
end)
