-- wrk: check-ins walking the seeded devices in order (bench/server/seed.cc naming), each thread
-- its own share, so that every device is asked once before any is asked twice.
local n = tonumber(os.getenv("DEVICES") or "100000")
local threads = tonumber(os.getenv("THREADS") or "2")
local body = '{"versions":{"main":"1.0.0"}}'
local counter = 0
setup = function(thread)
  thread:set("first", counter)
  counter = counter + 1
end
local next_id = nil
request = function()
  if next_id == nil then next_id = first end
  local id = string.format("%06d", next_id % n)
  next_id = next_id + threads
  return wrk.format("POST", "/device/v1/bench-" .. id .. "/check-in",
                    {["Authorization"] = "Bearer aloft_d_bench" .. id,
                     ["Content-Type"] = "application/json"}, body)
end
