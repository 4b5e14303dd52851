-- wrk script: POST one JSON body (from $WRK_BODY_FILE, else $WRK_BODY) and print the counts
-- and latency percentiles as JSON.
wrk.method = "POST"
local file = os.getenv("WRK_BODY_FILE")
if file then
  local f = assert(io.open(file, "rb"))
  wrk.body = f:read("*a")
  f:close()
else
  wrk.body = os.getenv("WRK_BODY")
end
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "seconds": %.6f, "errors": %d, "non2xx": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99), latency.mean))
end
