//! The Lua scripts: each runs atomically on the server.
//!
//! A lock key holds `<token>\n<fencing token>\n<holder JSON>`; the token is
//! random per grant, so only the grant that wrote it can extend or delete
//! it. Fencing tokens come from `INCR` on the lock's counter, taken in the
//! same script as the grant, so they are strictly increasing across all
//! clients; a counter that is new (or was lost) starts from the server's
//! clock in microseconds, so tokens never fall below a lost counter's.
//!
//! A lock's other keys are its key, a unit separator (`\x1f`: lock names
//! have no control characters, so no name can reach another lock's keys)
//! and `fence`, `readers` or `writer`.

use std::sync::LazyLock;

use redis::Script;

/// The scripts, each hashed once (`Script::new` computes the SHA-1 sent
/// with `EVALSHA`).
pub(crate) static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&ACQUIRE));
pub(crate) static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
pub(crate) static EXTEND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EXTEND));
pub(crate) static DELETE_IF_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(DELETE_IF));
pub(crate) static ACQUIRE_SHARED_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{PRELUDE}{ACQUIRE_SHARED_BODY}")));
pub(crate) static RELEASE_SHARED_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(RELEASE_SHARED));
pub(crate) static EXTEND_SHARED_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(EXTEND_SHARED));
pub(crate) static DROP_READER_IF_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(DROP_READER_IF));
pub(crate) static UNMARK_WRITER_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(UNMARK_WRITER));

/// Lua both acquire scripts share: the server's clock, the live entries of
/// a readers hash (expired ones dropped), the next fencing token.
const PRELUDE: &str = r"
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live_readers(key, now)
  local live = {}
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local expiry = tonumber(string.match(all[i + 1], '^(%d+)'))
    if expiry and expiry > now then
      table.insert(live, all[i + 1])
    else
      redis.call('HDEL', key, all[i])
    end
  end
  return live
end
-- One more than the counter, and never below the server's clock in
-- microseconds: a lost counter (a new name, a flushed key, or grants a
-- failed master made that never reached the replica promoted in its
-- place) cannot make tokens go back, as long as the data nodes' clocks
-- agree within the time a failover takes (seconds; NTP keeps them within
-- milliseconds). No server grants more than one lock a microsecond, so
-- the counter never runs ahead of the clock for long.
local function next_fence(key)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local fence = tonumber(redis.call('GET', key) or '0') + 1
  if fence < now then fence = now end
  redis.call('SET', key, fence)
  return fence
end
";

/// KEYS: lock, fence, readers, writer mark. ARGV: token, ttl ms, holder
/// JSON, the exact value of a grant the caller judged dead (empty: none),
/// `wait` when the caller will wait (it then marks itself the waiting
/// writer, so no new reader gets in ahead of it), and the waiter's id (the
/// same for all of one wait's attempts). Takes the lock if it is
/// free (no exclusive holder, no live reader) or its exclusive holder is
/// still exactly that dead grant (a compare-and-set: a grant that changed
/// in between is left alone).
/// Returns `{1, fence}` when granted, `{0, current value or false,
/// reader values…}` when not.
///
/// The whole script: the shared prelude, then the body.
pub static ACQUIRE: LazyLock<String> = LazyLock::new(|| format!("{PRELUDE}{ACQUIRE_BODY}"));

const ACQUIRE_BODY: &str = r"
local held = redis.call('GET', KEYS[1])
local readers = {}
if redis.call('EXISTS', KEYS[3]) == 1 then readers = live_readers(KEYS[3], server_ms()) end
if (held and held ~= ARGV[4]) or #readers > 0 then
  if ARGV[5] == 'wait' then
    -- The mark names the waiting writer (as a lock value does), so a
    -- reader on its host can tell when it died while waiting.
    redis.call('SET', KEYS[4], ARGV[6] .. '\n0\n' .. ARGV[3], 'PX', ARGV[2])
  end
  return {0, held or false, unpack(readers)}
end
if ARGV[6] ~= '' then
  local mark = redis.call('GET', KEYS[4])
  if mark and string.sub(mark, 1, string.len(ARGV[6]) + 1) == ARGV[6] .. '\n' then
    redis.call('DEL', KEYS[4])
  end
end
local fence = next_fence(KEYS[2])
-- %d: Lua's own number formatting turns 15 digits into an exponent.
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. string.format('%d', fence) .. '\n' .. ARGV[3], 'PX', ARGV[2])
return {1, fence}
";

/// KEYS: lock, fence, readers, writer mark. ARGV: token, ttl ms, holder
/// JSON, the exact value of an exclusive grant the caller judged dead
/// (empty: none), two unused here (the exclusive script's), and a
/// semaphore's permits (empty: no cap), and the mode asked (`S`, `IS`,
/// `IX`, `SIX`). Grants a hold in that mode unless an exclusive holder
/// (other than that dead one) or a waiting writer's mark stands, a live
/// holder's mode may not be held beside it, or the semaphore's live
/// holders fill its permits. Entries are `<expiry ms> <mode>\n<fence>\n<holder JSON>`.
/// Returns `{1, fence}`; `{2, mark}` when a waiting writer's mark kept the
/// caller out; or `{0, exclusive value or false, holder values…}` (the
/// holders when they kept the caller out).
const ACQUIRE_SHARED_BODY: &str = r"
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[4] then return {0, held} end
local mark = redis.call('GET', KEYS[4])
if mark then return {2, mark} end
local now = server_ms()
-- Which held modes each asked mode may join (multiple-granularity locking).
local compatible = {
  IS = {IS = true, IX = true, S = true, SIX = true},
  IX = {IS = true, IX = true},
  S = {IS = true, S = true},
  SIX = {IS = true},
}
local mine = compatible[ARGV[8]] or compatible['S']
local live = live_readers(KEYS[3], now)
local clash = false
for _, entry in ipairs(live) do
  local mode = string.match(entry, '^%d+ (%u+)') or 'S'
  if not mine[mode] then clash = true end
end
if clash or (ARGV[7] ~= '' and #live >= tonumber(ARGV[7])) then
  return {0, false, unpack(live)}
end
if held then redis.call('DEL', KEYS[1]) end
local fence = next_fence(KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1],
  string.format('%d', now + tonumber(ARGV[2])) .. ' ' .. ARGV[8] .. '\n' ..
  string.format('%d', fence) .. '\n' .. ARGV[3])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return {1, fence}
";

/// KEYS: readers. ARGV: token, channel. Drops the shared hold and wakes
/// waiters. Returns 1, or 0 when it was not there (expired, revoked).
pub(crate) const RELEASE_SHARED: &str = r"
local gone = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'released')
return gone
";

/// KEYS: readers. ARGV: token, ttl ms. Extends a shared hold that is
/// still there and unexpired. Returns 1, or 0 when it was lost.
pub(crate) const EXTEND_SHARED: &str = r"
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(string.match(entry, '^(%d+)'))
if not expiry or expiry <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local rest = string.sub(entry, string.len(string.match(entry, '^%d+')) + 1)
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + tonumber(ARGV[2])) .. rest)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// KEYS: readers. ARGV: token, exact entry, channel. Drops a shared hold
/// judged dead (or force-released) if it is still exactly what was judged.
pub(crate) const DROP_READER_IF: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[3], 'released')
  return 1
end
return 0
";

/// KEYS: writer mark. ARGV: waiter id. A writer that stops waiting
/// removes its mark, if it is still its own.
pub(crate) const UNMARK_WRITER: &str = r"
local mark = redis.call('GET', KEYS[1])
if mark and string.sub(mark, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '\n' then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// KEYS: lock. ARGV: token, channel. Deletes the lock if the token still
/// owns it and wakes waiters. Returns 1, or 0 when it was not ours.
pub const RELEASE: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '\n' then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
";

/// KEYS: lock. ARGV: token, ttl ms. Extends the lock if the token still
/// owns it. Returns 1, or 0 when it was lost.
const EXTEND: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '\n' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// KEYS: lock. ARGV: exact value, channel. Deletes the lock if it still
/// holds that value (force release of the grant that was read).
const DELETE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
";
