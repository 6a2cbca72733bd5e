-- cargo xtask bench: like random.lua (one of the bench codes FIRST..LAST at random), each
-- request as a visitor would send it: a user agent and a referrer drawn from mixes shaped
-- like real traffic (most visits from a few browsers, a tail of others and of crawlers;
-- about a third without a referrer). Script arguments: FIRST LAST [zipf]. With `zipf`, the
-- code is drawn as real traffic asks for links: by Zipf's law (s = 1) over FIRST..LAST,
-- FIRST the most asked for, so that of 100 000 links the top 1 % get 62 % of the
-- requests; without, uniformly (every link as likely: the worst case for everything that
-- adds clicks up).

local function code(n)
   return string.format("k%06x", (n * 2654435761) % 16777216)
end

local agents = {
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
   "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
   "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
   "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
   "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
   "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
   "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
   "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
   "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
   "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
   "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
   "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
   "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
   "curl/8.5.0",
}

local referrers = {
   false, false, false, false, false, false, false,
   "https://www.google.com/",
   "https://www.google.com/",
   "https://t.co/",
   "https://news.ycombinator.com/item?id=42000000",
   "https://www.reddit.com/r/rust/comments/abc123/some_post/",
   "https://www.facebook.com/",
   "https://l.instagram.com/",
   "https://www.linkedin.com/feed/",
   "https://duckduckgo.com/",
   "https://www.bing.com/search?q=short+links",
   "https://mail.google.com/",
   "https://github.com/rust-lang/rust/issues/1",
   "https://xn--bcher-kva.example/regal/7",
   "https://blog.example.org:8443/post/2026/12/07/",
}

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
end

local first, last, cdf

function init(args)
   first, last = tonumber(args[1]), tonumber(args[2])
   if args[3] == "zipf" then
      cdf = {}
      local sum = 0
      for k = 1, last - first + 1 do
         sum = sum + 1 / k
         cdf[k] = sum
      end
      for k = 1, #cdf do
         cdf[k] = cdf[k] / sum
      end
   end
   math.randomseed(os.time() + id * 7919)
end

local function pick()
   if not cdf then
      return math.random(first, last)
   end
   local u = math.random()
   local lo, hi = 1, #cdf
   while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then
         lo = mid + 1
      else
         hi = mid
      end
   end
   return first + lo - 1
end

function request()
   local headers = { ["User-Agent"] = agents[math.random(#agents)] }
   local referrer = referrers[math.random(#referrers)]
   if referrer then
      headers["Referer"] = referrer
   end
   return wrk.format(nil, "/" .. code(pick()), headers)
end
