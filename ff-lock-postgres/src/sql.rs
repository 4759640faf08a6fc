//! The schema and statements of the lease table.
//!
//! * `lock_holders`: a lock's slots, one row each: a grant (exclusive,
//!   shared, intention modes, a semaphore's permits) or a waiting
//!   writer's mark (`W`) while `holder` is set and the lease (by the
//!   server's clock) runs; free otherwise. Grants and releases **update
//!   slots in place** and never change an indexed column, so a lock taken
//!   and released thousands of times a minute stays a few rows on one
//!   page (heap-only updates, pruned on the page): a row per grant,
//!   inserted and deleted, left a trail of dead index entries that every
//!   later attempt on the name walked until autovacuum came (measured:
//!   an uncontended grant went from 0.7 ms to 1.6 ms in a minute).
//! * `lock_fences`: one row per lock name, its last fencing token. Every
//!   attempt on a name first raises this row's token by an upsert, which
//!   locks the row until commit, so grants of one name are decided (and
//!   slots handed out) one at a time, and tokens only rise.
//!
//! Taking a lock is one statement (`SELECT … FROM ff_lock_acquire(…)`): one
//! round trip, one short transaction, no session state. The function is
//! PL/pgSQL, created by the migration; its answers are documented there.

/// The schema's versions: step `i` brings it to version `i + 1`; `{schema}`
/// is the schema's name.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the tables and the functions of taking, releasing and revoking.
    r"
CREATE TABLE {schema}.lock_fences (
    name  text PRIMARY KEY,
    fence bigint NOT NULL
);
CREATE TABLE {schema}.lock_holders (
    name       text NOT NULL,
    slot       integer NOT NULL,
    holder     text,
    mode       text NOT NULL DEFAULT '',
    fence      bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    info       text NOT NULL DEFAULT '',
    PRIMARY KEY (name, slot)
);

-- Which modes may be held together (multiple-granularity locking).
CREATE FUNCTION {schema}.ff_lock_compatible(held text, asked text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN held = 'X' OR asked = 'X' THEN false
        WHEN held = 'IS' OR asked = 'IS' THEN true
        WHEN held = asked AND held IN ('IX', 'S') THEN true
        ELSE false
    END
$$;

-- A slot as a waiter reads it: holder, fence, milliseconds its lease has
-- left, holder JSON, one per line.
CREATE FUNCTION {schema}.ff_lock_describe(h {schema}.lock_holders, at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT h.holder || E'\n' || h.fence || E'\n'
        || greatest(0, ceil(extract(epoch FROM h.expires_at - at) * 1000))::bigint
        || E'\n' || h.info
$$;

-- Puts p_holder in a slot of p_name: the slot it already has (a waiter's
-- mark becoming its grant), else the lowest free one, else a new one.
-- Only under the name's fencing row lock (ff_lock_acquire).
CREATE FUNCTION {schema}.ff_lock_occupy(
    p_name text, p_find text, p_holder text, p_mode text, p_fence bigint,
    p_expires timestamptz, p_info text, p_now timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_slot integer;
BEGIN
    IF p_find IS NOT NULL THEN
        SELECT h.slot INTO v_slot FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder = p_find;
    END IF;
    IF v_slot IS NULL THEN
        SELECT h.slot INTO v_slot FROM {schema}.lock_holders h
         WHERE h.name = p_name AND (h.holder IS NULL OR h.expires_at <= p_now)
         ORDER BY h.slot LIMIT 1;
    END IF;
    IF v_slot IS NULL THEN
        SELECT coalesce(max(h.slot) + 1, 0) INTO v_slot FROM {schema}.lock_holders h
         WHERE h.name = p_name;
        INSERT INTO {schema}.lock_holders (name, slot, holder, mode, fence, expires_at, info)
        VALUES (p_name, v_slot, p_holder, p_mode, p_fence, p_expires, p_info);
    ELSE
        UPDATE {schema}.lock_holders h
           SET holder = p_holder, mode = p_mode, fence = p_fence, expires_at = p_expires, info = p_info
         WHERE h.name = p_name AND h.slot = v_slot;
    END IF;
END
$$;

-- Takes lock p_name in mode p_mode (X, S, IS, IX, SIX) for p_ttl_ms, if
-- free enough: no live holder whose mode clashes, no waiting writer's mark
-- ahead of a non-exclusive request, fewer live holders than p_permits.
-- The grant p_dead_holder with fence p_dead_fence (one the caller judged
-- dead) is ended first, if it is still exactly that grant. A blocked
-- exclusive request of a waiter (p_waiter) marks itself (mode W), so that
-- no new reader gets in ahead of it.
-- Answers (granted, fence, blockers): (1, fence, NULL); (0, 0, the live
-- holders that clash); (2, 0, the waiting writers' marks).
CREATE FUNCTION {schema}.ff_lock_acquire(
    p_name text, p_holder text, p_mode text, p_ttl_ms bigint, p_info text,
    p_dead_holder text, p_dead_fence bigint, p_waiter text, p_permits integer)
RETURNS TABLE (granted integer, fence bigint, blockers text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_fence bigint;
    v_blockers text[];
    v_live integer;
BEGIN
    -- The name's next fencing token: one more than the last, and never
    -- below the server's clock in microseconds (a lost row, or grants a
    -- failed primary made that never reached the replica promoted in its
    -- place, cannot make tokens go back). The upsert locks the row until
    -- commit, so grants of one name are decided one at a time, in token
    -- order; a refused attempt leaves a gap, which fencing allows.
    INSERT INTO {schema}.lock_fences AS f (name, fence)
    VALUES (p_name, floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
    ON CONFLICT (name) DO UPDATE
        SET fence = greatest(f.fence + 1, floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
    RETURNING f.fence INTO v_fence;
    v_now := clock_timestamp();
    IF p_dead_holder IS NOT NULL THEN
        UPDATE {schema}.lock_holders h SET holder = NULL, expires_at = '-infinity', info = ''
         WHERE h.name = p_name AND h.holder = p_dead_holder AND h.fence = p_dead_fence;
    END IF;
    IF p_mode = 'X' THEN
        SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
          FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now AND h.mode <> 'W';
    ELSE
        SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
          FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now AND h.mode = 'W';
        IF v_blockers IS NOT NULL THEN
            RETURN QUERY SELECT 2, 0::bigint, v_blockers;
            RETURN;
        END IF;
        SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
          FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now
           AND NOT {schema}.ff_lock_compatible(h.mode, p_mode);
        IF v_blockers IS NULL AND p_permits IS NOT NULL THEN
            SELECT count(*) INTO v_live FROM {schema}.lock_holders h
             WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now;
            IF v_live >= p_permits THEN
                SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
                  FROM {schema}.lock_holders h
                 WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now;
            END IF;
        END IF;
    END IF;
    IF v_blockers IS NOT NULL THEN
        IF p_waiter IS NOT NULL THEN
            PERFORM {schema}.ff_lock_occupy(p_name, p_waiter, p_waiter, 'W', 0,
                v_now + p_ttl_ms * interval '1 millisecond', p_info, v_now);
        END IF;
        RETURN QUERY SELECT 0, 0::bigint, v_blockers;
        RETURN;
    END IF;
    PERFORM {schema}.ff_lock_occupy(p_name, p_waiter, p_holder, p_mode, v_fence,
        v_now + p_ttl_ms * interval '1 millisecond', p_info, v_now);
    RETURN QUERY SELECT 1, v_fence, NULL::text[];
END
$$;

-- Ends the grant (or a waiter's mark) p_holder of p_name and wakes waiters
-- (on channel p_channel, the lock's name as payload). Returns 1 when it
-- was still running, or 0 when it was gone (run out, revoked, taken over):
-- a lease that ran out is freed too, but its release does not count.
CREATE FUNCTION {schema}.ff_lock_release(p_name text, p_holder text, p_channel text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_live boolean;
BEGIN
    UPDATE {schema}.lock_holders h SET holder = NULL, expires_at = '-infinity', info = ''
      FROM (SELECT o.slot, o.expires_at FROM {schema}.lock_holders o
             WHERE o.name = p_name AND o.holder = p_holder FOR UPDATE) AS old
     WHERE h.name = p_name AND h.slot = old.slot
    RETURNING old.expires_at > clock_timestamp() INTO v_live;
    PERFORM pg_notify(p_channel, p_name);
    RETURN CASE WHEN v_live THEN 1 ELSE 0 END;
END
$$;

-- Revokes every grant of p_name and wakes waiters; the grants revoked,
-- described as ff_lock_describe does, each with whether its lease was
-- still running.
CREATE FUNCTION {schema}.ff_lock_revoke(p_name text, p_channel text)
RETURNS TABLE (described text, live boolean) LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_row {schema}.lock_holders;
BEGIN
    FOR v_row IN
        SELECT * FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.mode <> 'W'
         ORDER BY h.slot FOR UPDATE
    LOOP
        described := {schema}.ff_lock_describe(v_row, v_now);
        live := v_row.expires_at > v_now;
        RETURN NEXT;
        UPDATE {schema}.lock_holders h SET holder = NULL, expires_at = '-infinity', info = ''
         WHERE h.name = p_name AND h.slot = v_row.slot;
    END LOOP;
    PERFORM pg_notify(p_channel, p_name);
END
$$;
",
    // 2: change feeds (`ff serve`): a grant passes the gate of
    //    ff-postgres's change feeds (its module doc), and notifies the
    //    releases' channel while a watcher holds the gate. Releases and
    //    revocations notify that channel already; renewals are not
    //    announced (a renewal moves only a lease's end). Otherwise the
    //    function of step 1, unchanged.
    r"
CREATE OR REPLACE FUNCTION {schema}.ff_lock_acquire(
    p_name text, p_holder text, p_mode text, p_ttl_ms bigint, p_info text,
    p_dead_holder text, p_dead_fence bigint, p_waiter text, p_permits integer)
RETURNS TABLE (granted integer, fence bigint, blockers text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_fence bigint;
    v_blockers text[];
    v_live integer;
BEGIN
    -- The name's next fencing token: one more than the last, and never
    -- below the server's clock in microseconds (a lost row, or grants a
    -- failed primary made that never reached the replica promoted in its
    -- place, cannot make tokens go back). The upsert locks the row until
    -- commit, so grants of one name are decided one at a time, in token
    -- order; a refused attempt leaves a gap, which fencing allows.
    INSERT INTO {schema}.lock_fences AS f (name, fence)
    VALUES (p_name, floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
    ON CONFLICT (name) DO UPDATE
        SET fence = greatest(f.fence + 1, floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
    RETURNING f.fence INTO v_fence;
    v_now := clock_timestamp();
    IF p_dead_holder IS NOT NULL THEN
        UPDATE {schema}.lock_holders h SET holder = NULL, expires_at = '-infinity', info = ''
         WHERE h.name = p_name AND h.holder = p_dead_holder AND h.fence = p_dead_fence;
    END IF;
    IF p_mode = 'X' THEN
        SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
          FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now AND h.mode <> 'W';
    ELSE
        SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
          FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now AND h.mode = 'W';
        IF v_blockers IS NOT NULL THEN
            RETURN QUERY SELECT 2, 0::bigint, v_blockers;
            RETURN;
        END IF;
        SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
          FROM {schema}.lock_holders h
         WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now
           AND NOT {schema}.ff_lock_compatible(h.mode, p_mode);
        IF v_blockers IS NULL AND p_permits IS NOT NULL THEN
            SELECT count(*) INTO v_live FROM {schema}.lock_holders h
             WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now;
            IF v_live >= p_permits THEN
                SELECT array_agg({schema}.ff_lock_describe(h, v_now)) INTO v_blockers
                  FROM {schema}.lock_holders h
                 WHERE h.name = p_name AND h.holder IS NOT NULL AND h.expires_at > v_now;
            END IF;
        END IF;
    END IF;
    IF v_blockers IS NOT NULL THEN
        IF p_waiter IS NOT NULL THEN
            PERFORM {schema}.ff_lock_occupy(p_name, p_waiter, p_waiter, 'W', 0,
                v_now + p_ttl_ms * interval '1 millisecond', p_info, v_now);
        END IF;
        RETURN QUERY SELECT 0, 0::bigint, v_blockers;
        RETURN;
    END IF;
    PERFORM {schema}.ff_lock_occupy(p_name, p_waiter, p_holder, p_mode, v_fence,
        v_now + p_ttl_ms * interval '1 millisecond', p_info, v_now);
    -- The change feeds' gate: refused while a watcher holds the lock
    -- exclusively, and then the grant is announced on the channel releases
    -- use (waiters ignore an empty payload).
    IF NOT pg_try_advisory_xact_lock_shared(hashtextextended('ff_lock_{schema}', 0)) THEN
        PERFORM pg_notify('ff_lock_{schema}', '');
    END IF;
    RETURN QUERY SELECT 1, v_fence, NULL::text[];
END
$$;
",
];

/// The statements, with the schema written in (a plain identifier).
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) acquire: String,
    pub(crate) release: String,
    pub(crate) renew: String,
    pub(crate) revoke: String,
    pub(crate) list: String,
    pub(crate) unmark: String,
}

impl Statements {
    pub(crate) fn new(s: &str) -> Self {
        Self {
            acquire: format!(
                "SELECT granted, fence, blockers FROM {s}.ff_lock_acquire($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            release: format!("SELECT {s}.ff_lock_release($1, $2, $3)"),
            renew: format!(
                "UPDATE {s}.lock_holders SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
                 WHERE name = $1 AND holder = $2 AND expires_at > clock_timestamp() RETURNING 1"
            ),
            revoke: format!("SELECT described, live FROM {s}.ff_lock_revoke($1, $2)"),
            list: format!(
                "SELECT h.name, {s}.ff_lock_describe(h, clock_timestamp()) FROM {s}.lock_holders h
                 WHERE h.holder IS NOT NULL AND h.mode <> 'W' AND h.expires_at > clock_timestamp()
                 ORDER BY h.name, h.fence"
            ),
            unmark: format!(
                "UPDATE {s}.lock_holders SET holder = NULL, expires_at = '-infinity', info = ''
                 WHERE name = $1 AND holder = $2 AND mode = 'W'"
            ),
        }
    }
}
