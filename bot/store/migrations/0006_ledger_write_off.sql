-- A new ledger kind, 'write_off': a job that ended without a video after fal may have run (and
-- billed) it. Like a refund it gives the member their credits back in full; unlike a refund it
-- keeps counting in the server's and the day's spend, so the budgets cap what fal may bill and
-- not only what is held. A job's reservation ends once: settled, refunded or written off.
--
-- SQLite cannot change a CHECK constraint, so the ledger is rebuilt with the same rows, ids,
-- indexes and triggers, and the running sums (0005) gain a write_offs column.

CREATE TABLE ledger_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        INTEGER NOT NULL,
    period    TEXT NOT NULL,  -- the allowance day the row counts in, e.g. 2026-11-21
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    job_id    TEXT REFERENCES jobs (id),
    kind      TEXT NOT NULL
        CHECK (kind IN ('reserve', 'settle', 'refund', 'write_off', 'grant', 'reset')),
    amount    INTEGER NOT NULL CHECK (amount >= 0),
    actor_id  INTEGER NOT NULL,  -- the member, the admin, or 0 for the bot
    note      TEXT NOT NULL DEFAULT '',
    CHECK ((kind IN ('reserve', 'settle', 'refund', 'write_off')) = (job_id IS NOT NULL))
);

INSERT INTO ledger_new (id, ts, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
SELECT id, ts, period, guild_id, user_id, job_id, kind, amount, actor_id, note FROM ledger;

-- Dropping the table drops its indexes and triggers (no trigger fires for the drop itself).
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;

CREATE INDEX ledger_by_member ON ledger (guild_id, user_id, period);
CREATE INDEX ledger_by_period ON ledger (period, guild_id);
-- A job has one reservation, and that reservation ends at most once.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_ending ON ledger (job_id)
    WHERE kind IN ('settle', 'refund', 'write_off');

-- As in 0003: the one change allowed takes a member's id out of a row.
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

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the credit ledger is append-only: rows cannot be deleted');
END;

-- A settle, refund or write-off must mirror its reservation exactly, so the sums always balance.
CREATE TRIGGER ledger_ending_matches_reserve BEFORE INSERT ON ledger
WHEN NEW.kind IN ('settle', 'refund', 'write_off') AND NOT EXISTS (
    SELECT 1 FROM ledger AS r
    WHERE r.job_id = NEW.job_id AND r.kind = 'reserve' AND r.amount = NEW.amount
      AND r.period = NEW.period AND r.guild_id = NEW.guild_id AND r.user_id = NEW.user_id
)
BEGIN
    SELECT RAISE(ABORT, 'a settle, refund or write-off must match its job''s reservation');
END;

ALTER TABLE ledger_member_day ADD COLUMN write_offs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_guild_day ADD COLUMN write_offs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_day ADD COLUMN write_offs INTEGER NOT NULL DEFAULT 0;

-- As in 0005, with write_offs.
CREATE TRIGGER ledger_totals_add AFTER INSERT ON ledger
BEGIN
    INSERT INTO ledger_member_day (period, guild_id, user_id, reserves, settles, refunds,
                                   write_offs, grants, resets)
    VALUES (NEW.period, NEW.guild_id, NEW.user_id,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'write_off' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period, guild_id, user_id) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, write_offs = write_offs + excluded.write_offs,
        grants = grants + excluded.grants, resets = resets + excluded.resets;
    INSERT INTO ledger_guild_day (period, guild_id, reserves, settles, refunds, write_offs,
                                  grants, resets)
    VALUES (NEW.period, NEW.guild_id,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'write_off' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period, guild_id) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, write_offs = write_offs + excluded.write_offs,
        grants = grants + excluded.grants, resets = resets + excluded.resets;
    INSERT INTO ledger_day (period, reserves, settles, refunds, write_offs, grants, resets)
    VALUES (NEW.period,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'write_off' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, write_offs = write_offs + excluded.write_offs,
        grants = grants + excluded.grants, resets = resets + excluded.resets;
END;

CREATE TRIGGER ledger_totals_move AFTER UPDATE OF user_id ON ledger
WHEN NEW.user_id IS NOT OLD.user_id
BEGIN
    UPDATE ledger_member_day SET
        reserves = reserves - CASE OLD.kind WHEN 'reserve' THEN OLD.amount ELSE 0 END,
        settles = settles - CASE OLD.kind WHEN 'settle' THEN OLD.amount ELSE 0 END,
        refunds = refunds - CASE OLD.kind WHEN 'refund' THEN OLD.amount ELSE 0 END,
        write_offs = write_offs - CASE OLD.kind WHEN 'write_off' THEN OLD.amount ELSE 0 END,
        grants = grants - CASE OLD.kind WHEN 'grant' THEN OLD.amount ELSE 0 END,
        resets = resets - CASE OLD.kind WHEN 'reset' THEN OLD.amount ELSE 0 END
    WHERE period = OLD.period AND guild_id = OLD.guild_id AND user_id = OLD.user_id;
    DELETE FROM ledger_member_day
    WHERE period = OLD.period AND guild_id = OLD.guild_id AND user_id = OLD.user_id
      AND reserves = 0 AND settles = 0 AND refunds = 0 AND write_offs = 0 AND grants = 0
      AND resets = 0
      AND NOT EXISTS (
          SELECT 1 FROM ledger
          WHERE period = OLD.period AND guild_id = OLD.guild_id AND user_id = OLD.user_id
      );
    INSERT INTO ledger_member_day (period, guild_id, user_id, reserves, settles, refunds,
                                   write_offs, grants, resets)
    VALUES (NEW.period, NEW.guild_id, NEW.user_id,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'write_off' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period, guild_id, user_id) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, write_offs = write_offs + excluded.write_offs,
        grants = grants + excluded.grants, resets = resets + excluded.resets;
END;
