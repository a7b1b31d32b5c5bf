-- wrk script for `make bench`: GET /tenants/acme/orders/42 with `Authorization: Bearer <token>`.
-- Tokens come from the file $BENCH_TOKENS (one per line). With one token every request carries the same
-- token (the hot, cached path); with many, each request takes the next one, starting at line
-- $BENCH_OFFSET and wrapping (the cold path: more tokens than any cache holds, so every one is first-seen).
-- `done` prints one machine-readable line that bench/bench.py parses.

local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if #line > 0 then
    tokens[#tokens + 1] = line
  end
end
local n = #tokens
local i = tonumber(os.getenv("BENCH_OFFSET") or "0") % n

wrk.method = "GET"
wrk.path = "/tenants/acme/orders/42"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. tokens[1]

-- $BENCH_BODY (a file): POST it as JSON instead (the MCP tool-call rows).
local body_path = os.getenv("BENCH_BODY")
if body_path and #body_path > 0 then
  local f = assert(io.open(body_path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

if n > 1 then
  local headers = { ["Accept"] = "application/json" }
  request = function()
    i = i % n + 1
    headers["Authorization"] = "Bearer " .. tokens[i]
    return wrk.format(nil, nil, headers)
  end
end

-- $BENCH_DELAY_MS: each connection waits that long before each request (a fixed offered load of about
-- connections x 1000 / delay requests per second while the filter keeps up, for the p99 rows).
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  delay = function()
    return delay_ms
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d, ' ..
    '"mean": %.1f, "max": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
