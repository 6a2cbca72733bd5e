-- Rate-limit budgets shared by every instance on the database (issue #14): a key's
-- `requests` or `admin` budget is one, however many instances serve it.
--
-- The window is counted in whole-second slots: at slot s a limit of q per w seconds counts
-- what was let through in slots s - w ..= s (one slot more than w, so that no real
-- interval of w seconds ever holds more than q) and lets through while that is below q.
-- Instances do not come here per request: each takes a lease of a few admissions for the
-- current slot (one when the key is quiet, more the busier it is), spends it in memory,
-- and gives back what it did not spend when it comes for the next. A lease is counted as
-- spent until it is given back, so the sum never exceeds q; a busy key loses at most one
-- lease per instance of headroom, for a second.
--
-- UNLOGGED: a budget is worth less than a write-ahead log record per lease, and a crash
-- of PostgreSQL that empties the table gives every key a fresh window, once.
CREATE UNLOGGED TABLE shortener.rate_slots (
    policy    text   NOT NULL,
    partition uuid   NOT NULL,
    slot      bigint NOT NULL,
    taken     integer NOT NULL CHECK (taken >= 0),
    PRIMARY KEY (policy, partition, slot)
);

-- Gives back `back` admissions of slot `back_slot` (0 for none), then grants up to `want`
-- in slot `now_slot` as far as the window has room. Returns what was granted, the
-- window's count with it, and the oldest slot counted (NULL when nothing is). One
-- partition's calls queue on a transaction-scoped advisory lock, so two instances never
-- both see the last admission free.
CREATE FUNCTION shortener.rate_take(p_policy text, p_partition uuid, p_quota integer,
                                    p_window integer, p_slot bigint, p_want integer,
                                    p_back_slot bigint, p_back integer)
    RETURNS TABLE (granted integer, counted integer, oldest bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    total integer;
    first bigint;
    g integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_policy || '/' || p_partition::text, 14));
    IF p_back > 0 THEN
        UPDATE shortener.rate_slots SET taken = greatest(taken - p_back, 0)
         WHERE policy = p_policy AND partition = p_partition AND slot = p_back_slot;
    END IF;
    DELETE FROM shortener.rate_slots
     WHERE policy = p_policy AND partition = p_partition AND slot < p_slot - p_window;
    -- Slots past p_slot come from instances whose clocks run ahead: they count too.
    SELECT coalesce(sum(taken), 0)::integer, min(slot) FILTER (WHERE taken > 0)
      INTO total, first
      FROM shortener.rate_slots
     WHERE policy = p_policy AND partition = p_partition;
    g := least(p_want, greatest(p_quota - total, 0));
    IF g > 0 THEN
        INSERT INTO shortener.rate_slots AS r (policy, partition, slot, taken)
        VALUES (p_policy, p_partition, p_slot, g)
        ON CONFLICT (policy, partition, slot) DO UPDATE SET taken = r.taken + g;
        first := least(coalesce(first, p_slot), p_slot);
    END IF;
    -- Partitions nobody asks for any more leave their slots behind; sweep them now and
    -- then (the table holds at most a minute of slots per key in use).
    IF random() < 0.001 THEN
        DELETE FROM shortener.rate_slots WHERE slot < p_slot - 3600;
    END IF;
    RETURN QUERY SELECT g, total + g, first;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON shortener.rate_slots TO shortener_service;
REVOKE EXECUTE ON FUNCTION shortener.rate_take(text, uuid, integer, integer, bigint, integer, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shortener.rate_take(text, uuid, integer, integer, bigint, integer, bigint, integer) TO shortener_service;
