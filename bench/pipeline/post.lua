-- post.lua - wrk script for the HTTP ingest row of bench/pipeline/run.sh: every request
-- is a keep-alive POST of one 77-byte JSON event. At the end it prints one line that
-- run.sh parses:
--   WRK requests duration_us status_errors(>=400) connect_err read_err write_err timeouts p50_us p99_us
wrk.method = "POST"
wrk.body = '{"ts":1700000000000,"level":"info","svc":"api","msg":"req 1 served in 12 ms"}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
                         e.status, e.connect, e.read, e.write, e.timeout,
                         latency:percentile(50), latency:percentile(99)))
end
