-- cargo xtask bench: every request GETs one path of the API with an account key.
-- Script arguments: PATH KEY.

function init(args)
   path = args[1]
   wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function request()
   return wrk.format("GET", path)
end
