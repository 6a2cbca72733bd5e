-- cargo xtask bench: every request GETs a bench code that no request of this run asked for
-- before, so that against a freshly started service each is a first touch.
-- Script arguments: FIRST LAST THREADS. Thread i (1..THREADS) walks its own slice of
-- FIRST..LAST in order. A thread that reaches the end of its slice starts it again (the
-- run then no longer measures first touches only) and `done` says so: "wrapped N".

local function code(n)
   return string.format("k%06x", (n * 2654435761) % 16777216)
end

local counter = 0
local threads = {}

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   local first, last, count = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
   local size = math.floor((last - first + 1) / count)
   slice_first = first + (id - 1) * size
   slice_last = slice_first + size - 1
   next_n = slice_first
   asked = 0
   wrapped = 0
end

function request()
   if next_n > slice_last then
      next_n = slice_first
      wrapped = wrapped + 1
   end
   local n = next_n
   next_n = n + 1
   asked = asked + 1
   return wrk.format(nil, "/" .. code(n))
end

function done(summary, latency, requests)
   for _, t in ipairs(threads) do
      io.write(string.format("walk: thread %d asked %d from %d, wrapped %d\n",
         t:get("id"), t:get("asked"), t:get("slice_first"), t:get("wrapped")))
   end
end
