-- Drives greylag's milter like an MTA would: the first attempt of a
-- triplet is deferred, the retry after the delay passes with X-Greylist.
-- Variables (miltertest -D): MILTER, SENDER, RCPT, DELAY (seconds).
local function step(what, ok, ...)
  if not ok then error(what .. ": " .. tostring(select(1, ...))) end
  return ...
end

local function attempt()
  local conn = mt.connect(MILTER, 5, 0.2)
  if conn == nil then error("mt.connect failed") end
  step("conninfo", pcall(mt.conninfo, conn, "mail.example.org", "198.51.100.7"))
  step("helo", pcall(mt.helo, conn, "mail.example.org"))
  step("mailfrom", pcall(mt.mailfrom, conn, "<" .. SENDER .. ">"))
  step("rcptto", pcall(mt.rcptto, conn, "<" .. RCPT .. ">"))
  return conn, mt.getreply(conn)
end

local ok, err = pcall(function()
  local conn, reply = attempt()
  if reply ~= SMFIR_REPLYCODE then error("first RCPT: expected a reply code (deferral), got " .. tostring(reply)) end
  print("first attempt deferred")
  mt.disconnect(conn)
  mt.sleep(tonumber(DELAY) + 1)
  conn, reply = attempt()
  if reply ~= SMFIR_CONTINUE then error("retry RCPT: expected continue, got " .. tostring(reply)) end
  step("eom", pcall(mt.eom, conn))
  if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eom: expected continue") end
  if not mt.eom_check(conn, MT_HDRADD, "X-Greylist") then error("no X-Greylist header added") end
  print("retry passed with X-Greylist")
  mt.disconnect(conn)
end)
if not ok then
  print("FAIL: " .. tostring(err))
  os.exit(1)
end
print("PASS")
