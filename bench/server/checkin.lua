-- wrk: random device check-ins over DEVICES seeded devices (bench/server/seed.cc naming).
local n = tonumber(os.getenv("DEVICES") or "100000")
local body = '{"versions":{"main":"1.0.0"}}'
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("seed", counter * 7919)
end
init = function()
  math.randomseed(seed or 1)
end
request = function()
  local id = string.format("%06d", math.random(0, n - 1))
  return wrk.format("POST", "/device/v1/bench-" .. id .. "/check-in",
                    {["Authorization"] = "Bearer aloft_d_bench" .. id,
                     ["Content-Type"] = "application/json"}, body)
end
