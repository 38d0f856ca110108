-- wrk script for bench/ingest.ts: each wrk thread sends the pre-signed deliveries of its own file
-- (`<prefix>.<thread number>`, one "signature<TAB>body" per line), each one once, so every 200
-- means a new event row and a new job. Running out of lines starts over (duplicates); that is
-- counted and reported so the bench can refuse the figure.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local sigs, bodies, count, at = {}, {}, 0, 0

function init(args)
  for line in io.lines(args[1] .. "." .. id) do
    local tab = line:find("\t", 1, true)
    count = count + 1
    sigs[count] = line:sub(1, tab - 1)
    bodies[count] = line:sub(tab + 1)
  end
  wrapped = 0
end

function request()
  at = at + 1
  if at > count then
    at = 1
    wrapped = wrapped + 1
  end
  return wrk.format("POST", "/webhooks/stripe",
    { ["Content-Type"] = "application/json", ["Stripe-Signature"] = sigs[at] }, bodies[at])
end

function done(summary, latency, requests)
  local wrapped = 0
  for _, t in ipairs(threads) do wrapped = wrapped + t:get("wrapped") end
  local e = summary.errors
  io.write(string.format(
    'LOAD_RESULT {"requests":%d,"seconds":%f,"non2xx":%d,"socketErrors":%d,"p50Ms":%f,"p99Ms":%f,"wrapped":%d}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, wrapped))
end
