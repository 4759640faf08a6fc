//! The Lua scripts: each runs atomically on the server.
//!
//! A lock key holds `<token>\n<fencing token>\n<holder JSON>`; the token is
//! random per grant, so only the grant that wrote it can extend or delete
//! it. Fencing tokens come from `INCR` on `<key>:fence`, taken in the same
//! script as the grant, so they are strictly increasing across all clients.

use std::sync::LazyLock;

use redis::Script;

/// The scripts, each hashed once (`Script::new` computes the SHA-1 sent
/// with `EVALSHA`).
pub(crate) static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE));
pub(crate) static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
pub(crate) static EXTEND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EXTEND));
pub(crate) static DELETE_IF_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(DELETE_IF));

/// KEYS: lock, fence. ARGV: token, ttl ms, holder JSON, and the exact
/// value of a grant the caller judged dead (empty: none). Takes the lock if
/// it is free or still holds exactly that dead grant (a compare-and-set:
/// a grant that changed in between is left alone).
/// Returns `{1, fence}` when granted, `{0, current value or false}`.
pub const ACQUIRE: &str = r"
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[4] then return {0, held} end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. fence .. '\n' .. ARGV[3], 'PX', ARGV[2])
return {1, fence}
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
