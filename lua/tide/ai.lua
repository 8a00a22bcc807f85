-- tide.ai: embeddings and chat models over HTTP (tide.http), typed
-- extraction into tide.record values, and an embedder that needs no
-- model.
--
-- ai.embedder{ url, model, ... } and ai.chat{ url, model, ... } return
-- memoized tide.fn values: their logic fingerprint is the model, the URL
-- (without user, password or query), the API flavour, the dimensions and
-- the request options, so that a swapped model recomputes exactly what it
-- must and an edit elsewhere recomputes nothing. The API key is read from
-- the environment variable api_key_env when a request is made, sent as a
-- bearer token, and kept out of the fingerprint, the store and messages
-- (a server's message that quotes it has it replaced by "***").
--
-- Requests are retried (retry.attempts, default 6) on a timeout, a
-- refused or reset connection, a 429, a 5xx or an answer that is not the
-- JSON expected, after an exponential backoff with jitter (initial_delay,
-- doubling up to max_delay) or after the server's Retry-After when it is
-- longer. rate = { requests_per_minute, tokens_per_minute } paces every
-- caller of one model function through two token buckets holding one
-- second's worth each (at least one request). An embedder batches
-- callers' texts (batch = count, batch_tokens = an estimate of tokens at
-- 4 bytes each); a batch the server refuses for what it holds (400, 413,
-- 422) is split in halves down to the text it refuses, whose caller alone
-- fails; any other 4xx (a key refused, a wrong URL) fails the batch.
local core = require "tide.core"
local fnmod = require "tide.fn"
local calls = require "tide.calls"
local json = require "tide.json"
local record = require "tide.record"

local type, error, pairs, ipairs, tostring, tonumber, pcall =
  type, error, pairs, ipairs, tostring, tonumber, pcall
local fmt = string.format
local math_type, floor, random, huge = math.type, math.floor, math.random,
  math.huge
local http_request, sleep, now_ms, embedding_answer = core.http_request,
  core.sleep, core.now_ms, core.embedding_answer

local M = {}

-- ---- options ----

local function fail(what, msg, level) error(what .. ": " .. msg, level + 1) end

local function check_keys(what, opts, known)
  if type(opts) ~= "table" then fail(what, "options must be a table", 3) end
  for k in pairs(opts) do
    if not known[k] then fail(what, "unknown option " .. tostring(k), 3) end
  end
end

local function positive_integer(what, opts, key, default)
  local v = opts[key]
  if v == nil then return default end
  if math_type(v) ~= "integer" or v < 1 then
    fail(what, key .. " must be a positive integer", 3)
  end
  return v
end

local function positive_number(what, v, key, default)
  if v == nil then return default end
  if type(v) ~= "number" or not (v > 0) or v == huge then
    fail(what, key .. " must be a positive number", 3)
  end
  return v
end

-- The URL without user, password, query and fragment: what joins the
-- fingerprint and messages (tide.http's own words for it).
local public_url = core.http_public_url

local function check_retry(what, retry)
  if retry == false then return { attempts = 1, initial = 0, max = 0 } end
  retry = retry or {}
  if type(retry) ~= "table" then
    fail(what, "retry must be a table { attempts, initial_delay, max_delay } "
         .. "or false", 3)
  end
  for k in pairs(retry) do
    if k ~= "attempts" and k ~= "initial_delay" and k ~= "max_delay" then
      fail(what, "unknown retry option " .. tostring(k), 3)
    end
  end
  local attempts = retry.attempts or 6
  if math_type(attempts) ~= "integer" or attempts < 1 then
    fail(what, "retry.attempts must be a positive integer", 3)
  end
  return { attempts = attempts,
           initial = positive_number(what, retry.initial_delay,
                                     "retry.initial_delay", 0.5),
           max = positive_number(what, retry.max_delay, "retry.max_delay",
                                 30) }
end

-- ---- the rate limiter: two token buckets ----

local function new_limiter(what, rate)
  if rate == nil then return nil end
  if type(rate) ~= "table" then
    fail(what, "rate must be a table { requests_per_minute, "
         .. "tokens_per_minute }", 3)
  end
  for k in pairs(rate) do
    if k ~= "requests_per_minute" and k ~= "tokens_per_minute" then
      fail(what, "unknown rate option " .. tostring(k), 3)
    end
  end
  local rpm = positive_number(what, rate.requests_per_minute,
                              "rate.requests_per_minute", nil)
  local tpm = positive_number(what, rate.tokens_per_minute,
                              "rate.tokens_per_minute", nil)
  if not rpm and not tpm then
    fail(what, "rate needs requests_per_minute or tokens_per_minute", 3)
  end
  local buckets = {}
  if rpm then
    buckets[#buckets + 1] = { per_ms = rpm / 60000,
                              cap = math.max(1, rpm / 60), cost = "requests" }
  end
  if tpm then
    buckets[#buckets + 1] = { per_ms = tpm / 60000,
                              cap = math.max(1, tpm / 60), cost = "tokens" }
  end
  for _, b in ipairs(buckets) do b.level, b.at = b.cap, now_ms() end
  -- Waits until each bucket holds its cost (a cost over a bucket's size
  -- waits for a full bucket), then takes it. Callers share the buckets:
  -- between the check and the take nothing else runs.
  return function(tokens)
    for _, b in ipairs(buckets) do
      local cost = b.cost == "requests" and 1 or tokens
      while true do
        local t = now_ms()
        b.level = math.min(b.cap, b.level + (t - b.at) * b.per_ms)
        b.at = t
        local need = math.min(cost, b.cap)
        if b.level >= need then
          b.level = b.level - cost
          break
        end
        sleep((need - b.level) / b.per_ms / 1000)
      end
    end
  end
end

-- ---- requests with retries ----

local RETRY_KIND = { timeout = true, connect = true, reset = true }

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Seconds to wait from a Retry-After header: a number of seconds, or an
-- HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT") taken against this
-- machine's clock; nil when there is none or it cannot be read.
local function retry_after(headers)
  local v = headers and headers["retry-after"]
  if not v then return nil end
  local s = tonumber(v)
  if s then return math.max(0, s) end
  local day, mon, year, h, m, sec =
    v:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not day or not MONTHS[mon] then return nil end
  -- os.time reads a table as local time: the zone's offset is taken out.
  local now = os.time()
  local offset = now - os.time(os.date("!*t", now))
  local at = os.time { year = tonumber(year), month = MONTHS[mon],
    day = tonumber(day), hour = tonumber(h), min = tonumber(m),
    sec = tonumber(sec), isdst = false } + offset
  return math.max(0, at - now)
end

-- What the URL holds that messages never show (tide.http's public URL
-- leaves them out): its password and its query's values (a key given
-- as ?key=...), as written and percent-decoded.
local function url_secrets(url)
  local list = {}
  local function add(v)
    if v and #v > 0 then
      list[#list + 1] = v
      local decoded = v:gsub("%%(%x%x)", function(h)
        return string.char(tonumber(h, 16))
      end)
      if decoded ~= v then list[#list + 1] = decoded end
    end
  end
  add(url:match("^%a[%w+.-]*://[^/?#@]-:([^/?#@]*)@"))
  local query = url:match("%?([^#]*)")
  for v in (query or ""):gmatch("[^&=]*=([^&]*)") do add(v) end
  return list
end

-- The server's own words for a refused request, at most 300 bytes, the
-- key and the URL's secrets replaced (before the cut, which would leave
-- one it cuts through).
local function server_words(body, key, url)
  local obj = json.decode(body or "")
  local msg
  if type(obj) == "table" then
    local e = obj.error
    if type(e) == "table" then msg = e.message
    elseif type(e) == "string" then msg = e end
    msg = msg or obj.message or obj.detail
  end
  if type(msg) ~= "string" then msg = body or "" end
  local secrets = url and url_secrets(url) or {}
  if key and #key > 0 then secrets[#secrets + 1] = key end
  -- The longest first: a secret holding another is replaced whole.
  table.sort(secrets, function(a, b) return #a > #b end)
  for _, secret in ipairs(secrets) do
    msg = msg:gsub(secret:gsub("%W", "%%%0"), "***")
  end
  return (msg:gsub("[%c]", " "):sub(1, 300))
end

-- Client: what one model function sends with (its url, headers, pacing).
-- request(client, path, body_table, tokens) -> decoded answer, or
-- nil, message, status (status 4xx: a request the server refuses).
local function post(client, url, payload, tokens)
  local body = assert(json.encode(payload))
  local headers = { ["Content-Type"] = "application/json",
                    ["Accept"] = "application/json" }
  local key
  if client.key_env then
    key = os.getenv(client.key_env)
    if not key or key == "" then
      return nil, fmt("the environment variable %s (api_key_env) is not set",
                      client.key_env)
    end
    headers["Authorization"] = "Bearer " .. key
  end
  local shown = public_url(url)
  local last
  for attempt = 1, client.retry.attempts do
    if client.limit then client.limit(tokens) end
    local r, err, kind = http_request{ method = "POST", url = url,
      headers = headers, body = body, timeout = client.timeout }
    local wait
    if r and r.status >= 200 and r.status < 300 then
      local answer, why = client.decode(r.body)
      if type(answer) == "table" then return answer end
      last = fmt("POST %s: the answer cannot be read: %s", shown,
                 why or "not a JSON object")
    elseif r then
      last = fmt("POST %s: HTTP %d: %s", shown, r.status,
                 server_words(r.body, key, url))
      if r.status ~= 429 and r.status < 500 then
        return nil, last, r.status
      end
      wait = retry_after(r.headers)
    else
      -- tide.http's message names the method and the public URL.
      last = (err:gsub("^tide%.http: ", ""))
      if not RETRY_KIND[kind] then return nil, last end
    end
    if attempt == client.retry.attempts then break end
    local backoff = math.min(client.retry.max,
                             client.retry.initial * 2 ^ (attempt - 1))
    backoff = backoff * (0.5 + random() * 0.5)
    sleep(math.max(backoff, wait or 0))
  end
  return nil, fmt("%s (after %d attempt%s)", last, client.retry.attempts,
                  client.retry.attempts == 1 and "" or "s")
end

local function new_client(what, opts)
  if type(opts.url) ~= "string" or not opts.url:match("^https?://") then
    fail(what, "url must be an http:// or https:// URL", 3)
  end
  if type(opts.model) ~= "string" or opts.model == "" then
    fail(what, "model must be a non-empty string", 3)
  end
  if opts.api_key_env ~= nil and (type(opts.api_key_env) ~= "string"
      or not opts.api_key_env:match("^[%a_][%w_]*$")) then
    fail(what, "api_key_env must be the name of an environment variable", 3)
  end
  local api = opts.api or "openai"
  if api ~= "openai" and api ~= "ollama" then
    fail(what, 'api must be "openai" or "ollama"', 3)
  end
  if opts.options ~= nil and type(opts.options) ~= "table" then
    fail(what, "options must be a table of request fields", 3)
  end
  return {
    url = opts.url:gsub("/+$", ""), model = opts.model, api = api,
    key_env = opts.api_key_env, options = opts.options or {},
    retry = check_retry(what, opts.retry),
    limit = new_limiter(what, opts.rate),
    timeout = positive_number(what, opts.timeout, "timeout", 120),
    decode = json.decode,
  }
end

-- The endpoint: url as given when its path already names one, else its
-- path + the endpoint's, before the query (an api-version) and fragment.
local function endpoint(client, openai_path, ollama_path)
  local path = client.api == "ollama" and ollama_path or openai_path
  local base, rest = client.url:match("^([^?#]*)(.*)$")
  base = base:gsub("/+$", "")
  if base:sub(-#path) == path then return base .. rest end
  return base .. path .. rest
end

local function fn_name(prefix, model)
  return prefix .. "_" .. model:gsub("[^%w_.-]", "_")
end

-- ---- embeddings ----

-- The statuses that may come of one text in a batch (too long, not
-- valid): the batch is split to find it. A 401, 403 or 404 is not about
-- a text: every part would be refused the same way.
local REFUSES_INPUT = { [400] = true, [413] = true, [422] = true }

local function estimate_tokens(text)
  return floor(#text / 4) + 1
end

local EMBEDDER = { url = true, model = true, api_key_env = true, dims = true,
  batch = true, batch_tokens = true, concurrency = true, rate = true,
  retry = true, api = true, options = true, timeout = true, name = true,
  memo = true }

-- The vectors of an answer (read in C, as float32s, in index order),
-- checked against the texts sent and the declared dims.
local function vectors_of(answer, n, dims)
  local list = answer.vectors
  if #list ~= n then
    return nil, fmt("the answer holds %d vectors for %d texts", #list, n)
  end
  if dims and n > 0 and #list[1] ~= dims then
    return nil, fmt("vector 1 has %d numbers, the embedder was declared "
                    .. "with dims = %d", #list[1], dims)
  end
  return list
end

-- An embeddings answer as { vectors }, or nil and why it cannot be read.
local function read_embeddings(body)
  local vectors, why = embedding_answer(body)
  if not vectors then return nil, why end
  return { vectors = vectors }
end

function M.embedder(opts)
  local what = "ai.embedder"
  check_keys(what, opts, EMBEDDER)
  local client = new_client(what, opts)
  client.decode = read_embeddings
  what = what .. " " .. client.model
  local dims = opts.dims
  if dims ~= nil and (math_type(dims) ~= "integer" or dims < 1) then
    fail(what, "dims must be a positive integer", 2)
  end
  local size = positive_integer(what, opts, "batch", 64)
  local max_tokens = positive_integer(what, opts, "batch_tokens", 100000)
  local concurrency = positive_integer(what, opts, "concurrency", 1)
  if opts.name ~= nil and type(opts.name) ~= "string" then
    fail(what, "name must be a string", 2)
  end
  local url = endpoint(client, "/embeddings", "/api/embed")
  local body = function(texts)
    local tokens = 0
    for i, t in ipairs(texts) do
      if type(t) ~= "string" then
        error(fmt("%s: expected a string to embed, got %s", what, type(t)), 0)
      end
      tokens = tokens + estimate_tokens(t)
    end
    local payload = { model = client.model, input = texts }
    for k, v in pairs(client.options) do payload[k] = v end
    local answer, err, status = post(client, url, payload, tokens)
    if not answer then
      if REFUSES_INPUT[status] and #texts > 1 then calls.smaller_batch() end
      error(what .. ": " .. err, 0)
    end
    local vectors, why = vectors_of(answer, #texts, dims)
    if not vectors then
      error(fmt("%s: POST %s: %s", what, public_url(url), why), 0)
    end
    return vectors
  end
  -- Not a tail call: fnmod.new raises at level 3, the caller's line.
  local f = fnmod.new(opts.name or fn_name("embed", client.model), {
    memo = opts.memo ~= false, logic = "none", version = "tide.ai.embedder 1",
    deps = { url = public_url(url), model = client.model, api = client.api,
             dims = dims or false, options = client.options },
    batch = { size = size, cost = estimate_tokens, max_cost = max_tokens },
    concurrency = concurrency,
  }, body)
  return f
end

-- ---- the embedder without a model ----

function M.hash_embedder(opts)
  local what = "ai.hash_embedder"
  check_keys(what, opts or {}, { dims = true, name = true, memo = true })
  opts = opts or {}
  local dims = opts.dims or 256
  if math_type(dims) ~= "integer" or dims < 1 or dims > 65536 then
    fail(what, "dims must be an integer from 1 to 65536", 2)
  end
  local embed = core.hash_embed
  local f = fnmod.new(opts.name or ("hash_embed_" .. dims), {
    memo = opts.memo and true or false, logic = "none",
    version = "tide.ai.hash_embedder " .. core.hash_embed_version,
    deps = { dims = dims },
  }, function(text)
    if type(text) ~= "string" then
      error(fmt("%s: expected a string to embed, got %s", what, type(text)),
            2)
    end
    return embed(text, dims)
  end)
  return f
end

-- ---- chat and extraction ----

local CHAT = { url = true, model = true, api_key_env = true, api = true,
  options = true, rate = true, retry = true, timeout = true,
  concurrency = true, system = true, name = true, memo = true }

local chats = setmetatable({}, { __mode = "k" }) -- fn -> client

-- The messages of a prompt: a string (one user message, after the system
-- message when there is one) or a list of { role, content }.
local function messages_of(what, client, prompt)
  local list = {}
  if client.system then list[1] = { role = "system", content = client.system } end
  if type(prompt) == "string" then
    list[#list + 1] = { role = "user", content = prompt }
  elseif type(prompt) == "table" then
    for i, m in ipairs(prompt) do
      if type(m) ~= "table" or type(m.role) ~= "string"
         or type(m.content) ~= "string" then
        error(fmt("%s: message %d must be { role = ..., content = ... } "
                  .. "with strings", what, i), 0)
      end
      list[#list + 1] = { role = m.role, content = m.content }
    end
  else
    error(fmt("%s: expected a prompt string or a list of messages, got %s",
              what, type(prompt)), 0)
  end
  return list
end

function M.chat(opts)
  local what = "ai.chat"
  check_keys(what, opts, CHAT)
  local client = new_client(what, opts)
  what = what .. " " .. client.model
  if opts.system ~= nil and type(opts.system) ~= "string" then
    fail(what, "system must be a string", 2)
  end
  client.system = opts.system
  local concurrency = positive_integer(what, opts, "concurrency", 4)
  local url = endpoint(client, "/chat/completions", "/api/chat")
  -- schema: a JSON schema the answer must follow, or nil.
  local f = fnmod.new(opts.name or fn_name("chat", client.model), {
    memo = opts.memo ~= false, logic = "none", version = "tide.ai.chat 1",
    deps = { url = public_url(url), model = client.model, api = client.api,
             system = client.system or false, options = client.options },
    concurrency = concurrency,
  }, function(prompt, schema)
    local messages = messages_of(what, client, prompt)
    local payload = { model = client.model, messages = messages }
    for k, v in pairs(client.options) do payload[k] = v end
    if client.api == "ollama" then
      payload.stream = false
      if schema then payload.format = schema end
    elseif schema then
      payload.response_format = { type = "json_schema", json_schema = {
        name = "answer", strict = true, schema = schema } }
    end
    local tokens = 0
    for _, m in ipairs(messages) do tokens = tokens + estimate_tokens(m.content) end
    local answer, err = post(client, url, payload, tokens)
    if not answer then error(what .. ": " .. err, 0) end
    local content
    if client.api == "ollama" then
      content = type(answer.message) == "table" and answer.message.content
    else
      local c = type(answer.choices) == "table" and answer.choices[1]
      content = type(c) == "table" and type(c.message) == "table"
        and c.message.content
    end
    if type(content) ~= "string" then
      error(fmt("%s: POST %s: the answer has no message content", what,
                public_url(url)), 0)
    end
    return content
  end)
  chats[f] = client
  return f
end

-- The JSON schema of a tide type: every field required (optional ones
-- may be null), no other fields, as OpenAI's strict mode asks.
local function schema_of(t)
  local k = t.kind
  if k == "string" or k == "bytes" then return { type = "string" }
  elseif k == "integer" then return { type = "integer" }
  elseif k == "number" then return { type = "number" }
  elseif k == "boolean" then return { type = "boolean" }
  elseif k == "json" then
    return { type = { "string", "number", "boolean", "object", "array" } }
  elseif k == "list" then return { type = "array", items = schema_of(t.elem) }
  elseif k == "vector" then
    return { type = "array", items = { type = "number" }, minItems = t.size,
             maxItems = t.size }
  elseif k == "optional" then
    return { anyOf = { schema_of(t.elem), { type = "null" } } }
  end
  -- A record type.
  local properties, required = {}, {}
  for i, f in ipairs(t.fields) do
    properties[f.name] = schema_of(f.type)
    required[i] = f.name
  end
  return { type = "object", properties = properties, required = required,
           additionalProperties = false }
end
M.schema_of = schema_of

-- JSON null (cjson's sentinel) as nil: an optional field left empty.
local function without_nulls(v)
  if v == json.null then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = without_nulls(x) end
  return out
end

local EXTRACT = { chat = true, instructions = true }

-- ai.extract(RecordType, text, { chat, instructions }) -> a record of
-- RecordType, or raises a message naming what does not fit.
function M.extract(rt, text, opts)
  if not (record.is_type(rt) and rt.kind == "record") then
    error("ai.extract: the first argument must be a tide.record type", 2)
  end
  local what = "ai.extract " .. rt.name
  if type(text) ~= "string" then
    error(fmt("%s: text must be a string, got %s", what, type(text)), 2)
  end
  opts = opts or {}
  check_keys(what, opts, EXTRACT)
  if not chats[opts.chat] then
    error(what .. ": opts.chat must be a model from ai.chat{...}", 2)
  end
  if opts.instructions ~= nil and type(opts.instructions) ~= "string" then
    error(what .. ": instructions must be a string", 2)
  end
  local schema = schema_of(rt)
  local prompt = {
    { role = "system", content = (opts.instructions or
      ("Extract a " .. rt.name .. " from the text.")) ..
      "\nAnswer with one JSON object that follows this JSON schema, and "
      .. "nothing else:\n" .. assert(json.encode(schema)) },
    { role = "user", content = text },
  }
  local content = opts.chat(prompt, schema)
  -- Some servers wrap JSON in a Markdown fence despite the schema.
  local inner = content:match("^%s*```%w*%s*\n(.-)\n%s*```%s*$") or content
  local value, err = json.decode(inner)
  if type(value) ~= "table" then
    error(fmt("%s: the model's answer is not a JSON object (%s): %s", what,
              err or "got " .. type(value), content:sub(1, 200)), 2)
  end
  local ok, r = pcall(rt, without_nulls(value))
  if not ok then
    error(fmt("%s: the model's answer does not fit the type: %s", what,
              tostring(r):gsub("^[^:]*:%d+: ", "")), 2)
  end
  return r
end

return M
