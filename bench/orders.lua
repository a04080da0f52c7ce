-- wrk script for order intake: a new eSIM line, each request with its own Idempotency-Key.
-- The bearer token comes from BENCH_TOKEN; the body from BENCH_BODY.
local counter = 0
local prefix = ""

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  prefix = tostring(math.random(1, 1000000000))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.body = os.getenv("BENCH_BODY")

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter
  return wrk.format(nil, nil, nil, nil)
end
