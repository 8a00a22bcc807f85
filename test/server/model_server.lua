-- A real HTTP/1.1 server on 127.0.0.1 for the model specs and benchmarks:
-- it speaks the OpenAI-compatible embeddings and chat completion endpoints
-- and Ollama's /api/embed, answers with deterministic vectors, injects the
-- faults a test asks for, and counts what it received.
--
--   lua5.4 test/server/model_server.lua [--port N] [--port-file F]
--     [--latency-ms N] [--dims N] [--pool N]
--
-- --pool N (for benchmarks) answers embeddings from N vectors encoded
-- once, picked by a hash of the model and the text, so that the server's
-- own work stays small beside the latency it is given.
-- Prints "listening on PORT" (and writes PORT to the port file) once it
-- accepts connections. Endpoints:
--   POST /v1/embeddings, /api/embed   { model, input = string or list }
--   POST /v1/chat/completions         { model, messages, ... }
--   GET  /control/stats   { requests, batches = { sizes }, paths, queries
--                           (each request's query string, "" for none), auth,
--                           models, bodies = { the last 50 request bodies },
--                           max_inflight (requests answered at once),
--                           proxied (requests that named a whole URL, as
--                           through a proxy: served as if direct) }
--   POST /control/reset   forgets the counts, faults and replies
--   POST /control/faults  { faults = { fault, ... } }: the next requests
--     to a model endpoint take these faults in order, one each:
--     { status = 429, retry_after = S } | { status = 429,
--     retry_after_date = S } (an HTTP date S seconds ahead) | { status = 500 } |
--     { delay_ms = N } | { reset = true } | { malformed = true } |
--     { echo_auth = true, pad = N } (a 401 whose message quotes the key,
--     after N bytes of padding) | { echo_query = true } (a 401 whose
--     message quotes the request's query, a key given in the URL)
--   POST /control/chat    { replies = { "...", ... } }: the next chat
--     answers' content, in order (then the last user message is echoed)
-- An input holding "FAIL" is refused with a 400 every time (a permanently
-- bad item); one holding "SLOW" delays its batch by 300 ms. A vector is a
-- function of the model's name and the text only.
local uv = require "luv"
local cjson = require "cjson.safe"

local args = { port = 0, latency_ms = 0, dims = 8, pool = 0 }
do
  local i = 1
  while arg[i] do
    local a, v = arg[i], arg[i + 1]
    if a == "--port" then args.port = tonumber(v)
    elseif a == "--port-file" then args.port_file = v
    elseif a == "--latency-ms" then args.latency_ms = tonumber(v)
    elseif a == "--dims" then args.dims = tonumber(v)
    elseif a == "--pool" then args.pool = tonumber(v)
    else error("model_server: unknown argument " .. a) end
    i = i + 2
  end
end

local stats, faults, replies

local function reset()
  stats = { requests = 0, batches = {}, paths = {}, queries = {}, auth = {},
            models = {}, bodies = {}, inflight = 0, max_inflight = 0,
            proxied = 0 }
  faults, replies = {}, {}
end
reset()

-- A deterministic vector of the model and the text: a simple LCG seeded
-- by a string hash, normalised.
local function vector(model, text, dims)
  local h = 2166136261
  local s = model .. "\0" .. text
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  local v, norm = {}, 0
  for i = 1, dims do
    h = (h * 1103515245 + 12345) & 0x7fffffff
    local x = (h / 0x7fffffff) * 2 - 1
    v[i] = x
    norm = norm + x * x
  end
  norm = math.sqrt(norm)
  for i = 1, dims do v[i] = v[i] / norm end
  return v
end

local pool = {}

-- An OpenAI-shaped answer of vectors from the pool, built as text.
local function pooled_answer(model, texts)
  local parts = {}
  for i, t in ipairs(texts) do
    local h = 5381
    local s = model .. "\0" .. t
    for j = 1, #s do h = (h * 33 + s:byte(j)) & 0xffffffff end
    local slot = h % args.pool + 1
    if not pool[slot] then
      pool[slot] = cjson.encode(vector("pool", tostring(slot), args.dims))
    end
    parts[i] = ('{"object":"embedding","index":%d,"embedding":%s}'):format(
      i - 1, pool[slot])
  end
  return '{"object":"list","model":' .. cjson.encode(model) .. ',"data":['
    .. table.concat(parts, ",") .. "]}"
end

local function response(status, body, headers)
  local reason = ({ [200] = "OK", [400] = "Bad Request", [404] = "Not Found",
                    [429] = "Too Many Requests",
                    [500] = "Internal Server Error" })[status] or "Status"
  local out = { ("HTTP/1.1 %d %s\r\n"):format(status, reason),
                "Content-Type: application/json\r\n",
                ("Content-Length: %d\r\n"):format(#body) }
  for k, v in pairs(headers or {}) do out[#out + 1] = k .. ": " .. v .. "\r\n" end
  out[#out + 1] = "\r\n"
  out[#out + 1] = body
  return table.concat(out)
end

local function json_error(status, message)
  return response(status, cjson.encode({ error = { message = message } }))
end

local function inputs_of(req)
  local input = req.input
  if type(input) == "string" then return { input } end
  if type(input) == "table" then return input end
  return nil
end

-- The answer to a model request: status, body, extra headers, delay.
local function model_answer(path, req)
  local texts
  if path == "/v1/embeddings" or path == "/api/embed" then
    texts = inputs_of(req)
    if not texts then return 400, cjson.encode({ error = "input missing" }) end
    stats.batches[#stats.batches + 1] = #texts
  end
  stats.models[#stats.models + 1] = req.model or cjson.null
  local fault = table.remove(faults, 1)
  local delay = args.latency_ms
  if fault then
    if fault.delay_ms then delay = delay + fault.delay_ms
    elseif fault.reset then return "reset"
    elseif fault.malformed then return 200, "{\"data\": [ this is not json"
    elseif fault.echo_query then
      return 401, cjson.encode({ error = { message = "no access for "
        .. (req._query or "") } }), nil, delay
    elseif fault.echo_auth then
      -- A refusal that quotes the credentials, as some servers do.
      return fault.status or 401, cjson.encode({ error = { message =
        ("x"):rep(fault.pad or 0) .. "invalid key " .. (req._auth or "") } }),
        nil, delay
    elseif fault.status then
      local h = {}
      if fault.retry_after then h["Retry-After"] = tostring(fault.retry_after) end
      if fault.retry_after_date then
        h["Retry-After"] = os.date("!%a, %d %b %Y %H:%M:%S GMT",
                                   os.time() + fault.retry_after_date)
      end
      return fault.status, cjson.encode({ error = { message = "injected" } }),
        h, delay
    end
  end
  if texts then
    for _, t in ipairs(texts) do
      if type(t) ~= "string" then return 400, "{\"error\":\"bad input\"}" end
      if t:find("FAIL", 1, true) then
        return 400, cjson.encode({ error = { message = "input refused" } })
      end
      if t:find("SLOW", 1, true) then delay = delay + 300 end
    end
    local model = req.model or ""
    local dims = tonumber(req.dimensions) or args.dims
    if path == "/api/embed" then
      local list = {}
      for i, t in ipairs(texts) do list[i] = vector(model, t, dims) end
      return 200, cjson.encode({ model = model, embeddings = list }), nil,
        delay
    end
    if args.pool > 0 and path == "/v1/embeddings" and dims == args.dims then
      return 200, pooled_answer(model, texts), nil, delay
    end
    local data, tokens = {}, 0
    for i, t in ipairs(texts) do
      data[i] = { object = "embedding", index = i - 1,
                  embedding = vector(model, t, dims) }
      for _ in t:gmatch("%S+") do tokens = tokens + 1 end
    end
    return 200, cjson.encode({ object = "list", data = data, model = model,
      usage = { prompt_tokens = tokens, total_tokens = tokens } }), nil, delay
  end
  -- Chat.
  local content = table.remove(replies, 1)
  if not content then
    local last = ""
    for _, m in ipairs(req.messages or {}) do
      if m.role == "user" then last = m.content end
    end
    content = last
  end
  return 200, cjson.encode({ id = "chat", object = "chat.completion",
    model = req.model, choices = { { index = 0, finish_reason = "stop",
      message = { role = "assistant", content = content } } },
    usage = { prompt_tokens = 1, completion_tokens = 1, total_tokens = 2 } }),
    nil, delay
end

local function handle(method, path, headers, body, reply)
  local query = path:match("%?(.*)$")
  path = path:gsub("%?.*$", "")
  if path == "/control/stats" then
    return reply(response(200, cjson.encode(stats)))
  elseif path == "/control/reset" then
    reset()
    return reply(response(200, "{}"))
  elseif path == "/control/faults" then
    local req = cjson.decode(body) or {}
    for _, f in ipairs(req.faults or {}) do faults[#faults + 1] = f end
    return reply(response(200, "{}"))
  elseif path == "/control/chat" then
    local req = cjson.decode(body) or {}
    for _, r in ipairs(req.replies or {}) do replies[#replies + 1] = r end
    return reply(response(200, "{}"))
  end
  if method ~= "POST" or not (path == "/v1/embeddings" or path == "/api/embed"
      or path == "/v1/chat/completions") then
    return reply(json_error(404, "no such endpoint: " .. path))
  end
  stats.requests = stats.requests + 1
  stats.paths[#stats.paths + 1] = path
  stats.queries[#stats.queries + 1] = query or ""
  stats.auth[#stats.auth + 1] = headers["authorization"] or ""
  stats.bodies[#stats.bodies + 1] = body
  if #stats.bodies > 50 then table.remove(stats.bodies, 1) end
  local req = cjson.decode(body)
  if type(req) ~= "table" then return reply(json_error(400, "bad json")) end
  req._auth = (headers["authorization"] or ""):gsub("^Bearer ", "")
  req._query = query
  stats.inflight = stats.inflight + 1
  stats.max_inflight = math.max(stats.max_inflight, stats.inflight)
  local function answer(bytes)
    stats.inflight = stats.inflight - 1
    reply(bytes)
  end
  local status, out, extra, delay = model_answer(path, req)
  if status == "reset" then return answer(nil) end
  local bytes = response(status, out, extra)
  if delay and delay > 0 then
    local t = uv.new_timer()
    t:start(delay, 0, function() t:close(); answer(bytes) end)
  else
    answer(bytes)
  end
end

-- One connection: requests parsed one after another (keep-alive); a
-- reply is written in order even when an earlier one is delayed.
local function serve(client)
  local buf = ""
  local busy = false
  local closed = false
  local function close()
    if not closed then closed = true; client:close() end
  end
  local pump
  pump = function()
    if busy or closed then return end
    local head_end = buf:find("\r\n\r\n", 1, true)
    if not head_end then return end
    local head = buf:sub(1, head_end - 1)
    local method, path = head:match("^(%u+) (%S+) HTTP/1%.%d")
    if not method then return close() end
    local headers = {}
    for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
      headers[name:lower()] = value
    end
    local len = tonumber(headers["content-length"] or "0") or 0
    if #buf < head_end + 3 + len then return end
    local body = buf:sub(head_end + 4, head_end + 3 + len)
    buf = buf:sub(head_end + 4 + len)
    busy = true
    -- A request through a proxy names the whole URL: served as if direct.
    if path:match("^https?://") then
      stats.proxied = stats.proxied + 1
      path = path:gsub("^https?://[^/]*", "")
    end
    handle(method, path, headers, body, function(bytes)
      if closed then return end
      if bytes == nil then
        -- A reset: the connection is closed with the request unanswered.
        client:shutdown()
        return close()
      end
      client:write(bytes)
      busy = false
      pump()
    end)
  end
  client:read_start(function(err, chunk)
    if err or not chunk then return close() end
    buf = buf .. chunk
    pump()
  end)
end

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", args.port))
assert(server:listen(128, function(err)
  if err then return end
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  serve(client)
end))
local port = server:getsockname().port
if args.port_file then
  local f = assert(io.open(args.port_file .. ".tmp", "w"))
  f:write(port, "\n")
  f:close()
  os.rename(args.port_file .. ".tmp", args.port_file)
end
io.stdout:write("listening on ", port, "\n")
io.stdout:flush()
local function stop() os.exit(0) end
local sig = uv.new_signal()
sig:start("sigterm", stop)
uv.run()
