-- A member may ask for their data to be deleted (`python -m bot forget`). The ledger stays
-- append-only for money: the one change now allowed takes a member's id out of a row (user_id
-- and actor_id set to 0, a grant's note emptied) and leaves everything any sum depends on.
DROP TRIGGER ledger_no_update;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
WHEN NOT (
    NEW.id = OLD.id AND NEW.ts = OLD.ts AND NEW.period = OLD.period
    AND NEW.guild_id = OLD.guild_id AND NEW.job_id IS OLD.job_id AND NEW.kind = OLD.kind
    AND NEW.amount = OLD.amount
    AND NEW.user_id IN (OLD.user_id, 0)
    AND NEW.actor_id IN (OLD.actor_id, 0)
    AND NEW.note IN (OLD.note, '')
)
BEGIN
    SELECT RAISE(ABORT, 'the credit ledger is append-only: rows cannot be changed, only anonymised');
END;
