-- cargo xtask bench: every request GETs one of the bench codes FIRST..LAST, drawn at random.
-- Script arguments: FIRST LAST.

-- The code of bench link n: `k` and six hex digits of n * 2654435761 mod 2^24, exactly as
-- `code()` in xtask/src/bench/redirects.rs (the product stays exact in a double for every
-- n below 3 000 000).
local function code(n)
   return string.format("k%06x", (n * 2654435761) % 16777216)
end

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
end

local first, last

function init(args)
   first, last = tonumber(args[1]), tonumber(args[2])
   -- Each thread its own sequence.
   math.randomseed(os.time() + id * 7919)
end

function request()
   return wrk.format(nil, "/" .. code(math.random(first, last)))
end
