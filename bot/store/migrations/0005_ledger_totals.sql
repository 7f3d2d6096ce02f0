-- Running sums of the ledger: per member and day, per server and day, and per day. A reservation
-- reads one row of each instead of summing the whole day's ledger, which grew slower as the day
-- filled. Triggers keep them in the same transaction as every ledger row, so no code path can
-- forget them; the ledger stays the record and these can always be recomputed from it.

CREATE TABLE ledger_member_day (
    period   TEXT NOT NULL,
    guild_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    reserves INTEGER NOT NULL DEFAULT 0,
    settles  INTEGER NOT NULL DEFAULT 0,
    refunds  INTEGER NOT NULL DEFAULT 0,
    grants   INTEGER NOT NULL DEFAULT 0,
    resets   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, guild_id, user_id)
) WITHOUT ROWID;

CREATE TABLE ledger_guild_day (
    period   TEXT NOT NULL,
    guild_id INTEGER NOT NULL,
    reserves INTEGER NOT NULL DEFAULT 0,
    settles  INTEGER NOT NULL DEFAULT 0,
    refunds  INTEGER NOT NULL DEFAULT 0,
    grants   INTEGER NOT NULL DEFAULT 0,
    resets   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, guild_id)
) WITHOUT ROWID;

CREATE TABLE ledger_day (
    period   TEXT PRIMARY KEY,
    reserves INTEGER NOT NULL DEFAULT 0,
    settles  INTEGER NOT NULL DEFAULT 0,
    refunds  INTEGER NOT NULL DEFAULT 0,
    grants   INTEGER NOT NULL DEFAULT 0,
    resets   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO ledger_member_day (period, guild_id, user_id, reserves, settles, refunds, grants, resets)
SELECT period, guild_id, user_id,
    SUM(CASE kind WHEN 'reserve' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'settle' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'refund' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'grant' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'reset' THEN amount ELSE 0 END)
FROM ledger GROUP BY period, guild_id, user_id;

INSERT INTO ledger_guild_day (period, guild_id, reserves, settles, refunds, grants, resets)
SELECT period, guild_id,
    SUM(CASE kind WHEN 'reserve' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'settle' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'refund' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'grant' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'reset' THEN amount ELSE 0 END)
FROM ledger GROUP BY period, guild_id;

INSERT INTO ledger_day (period, reserves, settles, refunds, grants, resets)
SELECT period,
    SUM(CASE kind WHEN 'reserve' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'settle' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'refund' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'grant' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'reset' THEN amount ELSE 0 END)
FROM ledger GROUP BY period;

CREATE TRIGGER ledger_totals_add AFTER INSERT ON ledger
BEGIN
    INSERT INTO ledger_member_day (period, guild_id, user_id, reserves, settles, refunds, grants,
                                   resets)
    VALUES (NEW.period, NEW.guild_id, NEW.user_id,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period, guild_id, user_id) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, grants = grants + excluded.grants,
        resets = resets + excluded.resets;
    INSERT INTO ledger_guild_day (period, guild_id, reserves, settles, refunds, grants, resets)
    VALUES (NEW.period, NEW.guild_id,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period, guild_id) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, grants = grants + excluded.grants,
        resets = resets + excluded.resets;
    INSERT INTO ledger_day (period, reserves, settles, refunds, grants, resets)
    VALUES (NEW.period,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, grants = grants + excluded.grants,
        resets = resets + excluded.resets;
END;

-- The only update the ledger allows (0003) takes a member's id out of a row: the row's sums move
-- from the member to the anonymous member 0. Server and day sums do not change. A member row
-- left with nothing in it is deleted, so a forgotten member leaves no trace here either.
CREATE TRIGGER ledger_totals_move AFTER UPDATE OF user_id ON ledger
WHEN NEW.user_id IS NOT OLD.user_id
BEGIN
    UPDATE ledger_member_day SET
        reserves = reserves - CASE OLD.kind WHEN 'reserve' THEN OLD.amount ELSE 0 END,
        settles = settles - CASE OLD.kind WHEN 'settle' THEN OLD.amount ELSE 0 END,
        refunds = refunds - CASE OLD.kind WHEN 'refund' THEN OLD.amount ELSE 0 END,
        grants = grants - CASE OLD.kind WHEN 'grant' THEN OLD.amount ELSE 0 END,
        resets = resets - CASE OLD.kind WHEN 'reset' THEN OLD.amount ELSE 0 END
    WHERE period = OLD.period AND guild_id = OLD.guild_id AND user_id = OLD.user_id;
    DELETE FROM ledger_member_day
    WHERE period = OLD.period AND guild_id = OLD.guild_id AND user_id = OLD.user_id
      AND reserves = 0 AND settles = 0 AND refunds = 0 AND grants = 0 AND resets = 0
      AND NOT EXISTS (
          SELECT 1 FROM ledger
          WHERE period = OLD.period AND guild_id = OLD.guild_id AND user_id = OLD.user_id
      );
    INSERT INTO ledger_member_day (period, guild_id, user_id, reserves, settles, refunds, grants,
                                   resets)
    VALUES (NEW.period, NEW.guild_id, NEW.user_id,
        CASE NEW.kind WHEN 'reserve' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'settle' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'refund' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'grant' THEN NEW.amount ELSE 0 END,
        CASE NEW.kind WHEN 'reset' THEN NEW.amount ELSE 0 END)
    ON CONFLICT (period, guild_id, user_id) DO UPDATE SET
        reserves = reserves + excluded.reserves, settles = settles + excluded.settles,
        refunds = refunds + excluded.refunds, grants = grants + excluded.grants,
        resets = resets + excluded.resets;
END;
