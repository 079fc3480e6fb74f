-- hotbackup benchmarks: runs one of sysbench's stock OLTP scripts (HB_SB_SCRIPT, e.g.
-- oltp_write_only) unchanged and records, per thread, the wall-clock (CLOCK_REALTIME) end
-- time and the latency of every transaction (microseconds), kept in memory while running and
-- written at thread end to $HB_SB_OUT/lat.<thread>, one "<end_us> <lat_us>" line each, so the
-- bench can cut any time window (tps, p99, max, the transactions in flight at an instant).
require(os.getenv("HB_SB_SCRIPT") or "oltp_write_only")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long hb_sec; long hb_nsec; } hb_timespec_t;
int clock_gettime(int clk, hb_timespec_t *ts);
]]
local ts = ffi.new("hb_timespec_t")
local function now_us()
  ffi.C.clock_gettime(0, ts)  -- CLOCK_REALTIME: comparable with the shim's epoch timestamps
  return tonumber(ts.hb_sec) * 1000000 + math.floor(tonumber(ts.hb_nsec) / 1000)
end

local ends, lats, n = {}, {}, 0

local inner_event = event
function event()
  local t0 = now_us()
  inner_event()
  local t1 = now_us()
  n = n + 1
  ends[n] = t1
  lats[n] = t1 - t0
end

local inner_done = thread_done
function thread_done()
  local dir = os.getenv("HB_SB_OUT")
  if dir then
    local f = assert(io.open(dir .. "/lat." .. sysbench.tid, "w"))
    for i = 1, n do f:write(string.format("%.0f %.0f\n", ends[i], lats[i])) end
    f:close()
  end
  if inner_done then inner_done() end
end
