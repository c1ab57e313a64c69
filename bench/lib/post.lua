-- wrk script for POST benches.
--
-- WRK_BODIES: a file with one request body per line; each wrk thread pre-formats all of them
--             once and cycles through them (so 100 tenants cost nothing per request).
--             A line "PATH<TAB>BODY" posts that body to that path instead of WRK_PATH.
-- WRK_PATH:   the request path (default /v1/events).
-- WRK_AUTH:   a bearer key, sent as "Authorization: Bearer <key>" when set.
-- done() prints one line "WRK_JSON {...}" that bench/lib/wrk.ts parses (times in µs).

local bodies_file = os.getenv("WRK_BODIES")
local path = os.getenv("WRK_PATH") or "/v1/events"
local auth = os.getenv("WRK_AUTH")

local formatted = {}
local index = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if auth ~= nil and auth ~= "" then
    headers["Authorization"] = "Bearer " .. auth
  end
  for line in io.lines(bodies_file) do
    if #line > 0 then
      -- A line "PATH<TAB>BODY" posts BODY to PATH (nchan: one channel per tenant).
      local p, b = line:match("^(/[^\t]*)\t(.*)$")
      if p then
        formatted[#formatted + 1] = wrk.format("POST", p, headers, b)
      else
        formatted[#formatted + 1] = wrk.format("POST", path, headers, line)
      end
    end
  end
  if #formatted == 0 then
    error("no request bodies in " .. tostring(bodies_file))
  end
  -- Threads start at different bodies so they do not publish to the same tenant in lockstep.
  index = ((tonumber(thread_no) or 1) * 37) % #formatted
end

function request()
  index = index % #formatted + 1
  return formatted[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
