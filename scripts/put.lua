-- scripts/put.lua: wrk's write load in scripts/ab.sh and scripts/lat1.sh, as in compare.sh:
-- PUTs of 64-byte values to a thousand keys in turn.
local counter = 0
local value = "value=" .. string.rep("x", 64)
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v2/keys/bench/k" .. (counter % 1000),
    {["Content-Type"] = "application/x-www-form-urlencoded"}, value)
end
