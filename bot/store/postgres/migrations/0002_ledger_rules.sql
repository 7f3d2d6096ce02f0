-- What the ledger refuses, as SQLite's 0001, 0003 and 0006 refuse it. Rows are never changed or
-- removed: no DELETE, no TRUNCATE (which fires no row trigger, so it gets its own), and the one
-- UPDATE allowed is `forget`'s anonymising, which takes a member's id out of a row (user_id and
-- actor_id set to 0, a note emptied) and leaves everything any sum depends on. A settle, refund
-- or write-off must mirror its job's reservation exactly, so the sums always balance.
--
-- The errors carry SQLSTATEs of the integrity class (23xxx), so the store can tell a refused
-- write from a broken connection: restrict_violation for a change, check_violation for an
-- ending that does not match.

CREATE FUNCTION ledger_only_anonymise() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = OLD.id AND NEW.ts = OLD.ts AND NEW.period = OLD.period
       AND NEW.guild_id = OLD.guild_id AND NEW.job_id IS NOT DISTINCT FROM OLD.job_id
       AND NEW.kind = OLD.kind AND NEW.amount = OLD.amount
       AND NEW.user_id IN (OLD.user_id, 0)
       AND NEW.actor_id IN (OLD.actor_id, 0)
       AND NEW.note IN (OLD.note, '')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the credit ledger is append-only: rows cannot be changed, only anonymised'
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE FUNCTION ledger_no_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the credit ledger is append-only: rows cannot be deleted'
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE FUNCTION ledger_ending_matches_reserve() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM ledger AS r
        WHERE r.job_id = NEW.job_id AND r.kind = 'reserve' AND r.amount = NEW.amount
          AND r.period = NEW.period AND r.guild_id = NEW.guild_id AND r.user_id = NEW.user_id
    ) THEN
        RAISE EXCEPTION 'a settle, refund or write-off must match its job''s reservation'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_only_anonymise BEFORE UPDATE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_only_anonymise();

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_no_delete();

CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_no_delete();

CREATE TRIGGER ledger_ending_matches_reserve BEFORE INSERT ON ledger
    FOR EACH ROW WHEN (NEW.kind IN ('settle', 'refund', 'write_off'))
    EXECUTE FUNCTION ledger_ending_matches_reserve();
