-- SPDX-License-Identifier: MIT
-- wrk script: POST distinct pre-signed Trello deliveries (see gen-payloads.mjs).
-- Each wrk thread reads its own file PAYLOAD_DIR/payloads-<thread>.txt.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local dir = os.getenv("PAYLOAD_DIR")
  sigs, bodies, i = {}, {}, 0
  if dir then
    local f = assert(io.open(dir .. "/payloads-" .. tid .. ".txt", "r"))
    for line in f:lines() do
      local tab = line:find("\t", 1, true)
      sigs[#sigs + 1] = line:sub(1, tab - 1)
      bodies[#bodies + 1] = line:sub(tab + 1)
    end
    f:close()
  end
  -- PAYLOAD_START: skip this many lines, so that a second run in the same
  -- benchmark sends deliveries the first one did not (no duplicates)
  i = math.min(tonumber(os.getenv("PAYLOAD_START") or "0") or 0, #bodies)
  wrapped = 0
end

-- PACE_MS: each connection waits this long after an answer before its next
-- request, a load below saturation (latency without queueing behind the
-- load generator itself); unset or 0: as fast as possible.
local pace = tonumber(os.getenv("PACE_MS") or "0") or 0
if pace > 0 then
  function delay() return pace end
end

function request()
  if #bodies == 0 then
    return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, "{}")
  end
  i = i + 1
  if i > #bodies then i = 1; wrapped = wrapped + 1 end
  return wrk.format("POST", nil, {
    ["X-Trello-Webhook"] = sigs[i],
    ["Content-Type"] = "application/json",
  }, bodies[i])
end

-- last: the furthest line any thread reached in its file (threads send
-- unevenly, so a later run's PAYLOAD_START must be past the furthest);
-- wrapped: how often threads started their file again (duplicates sent)
function done(summary, latency, requests)
  local last, wraps = 0, 0
  for _, t in ipairs(threads) do
    last = math.max(last, tonumber(t:get("i")) or 0)
    wraps = wraps + (tonumber(t:get("wrapped")) or 0)
  end
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.0f p50_us=%d p99_us=%d non2xx=%d errors=%d last=%d wrapped=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    last, wraps))
end
