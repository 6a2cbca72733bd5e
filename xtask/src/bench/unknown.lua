-- cargo xtask bench: every request GETs a well-formed code that no link has (`u` and six
-- hex digits, drawn at random), as someone enumerating codes would; counts the answers by
-- status and prints them at the end as `status <code>: <count>`.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() + id * 7919)
   found, missing, limited, other = 0, 0, 0, 0
end

function request()
   return wrk.format(nil, string.format("/u%06x", math.random(0, 16777215)))
end

function response(status, headers, body)
   if status == 404 then
      missing = missing + 1
   elseif status == 429 then
      limited = limited + 1
   elseif status >= 300 and status < 400 then
      found = found + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local totals = { found = 0, missing = 0, limited = 0, other = 0 }
   for _, t in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + t:get(name)
      end
   end
   io.write(string.format("status 3xx: %d\nstatus 404: %d\nstatus 429: %d\nstatus other: %d\n",
      totals.found, totals.missing, totals.limited, totals.other))
end
