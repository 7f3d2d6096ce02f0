-- The running day totals (SQLite's 0005 and 0006), kept by triggers in the same transaction as
-- every ledger row, so no code path can forget them; the ledger stays the record and these can
-- always be recomputed from it.
--
-- Statement triggers with transition tables rather than SQLite's row triggers: a statement
-- that writes many rows (a bulk copy from SQLite, forgetting a member) touches each totals row
-- once, with the sum of its rows. Keys are written in order, so two transactions that touch the
-- same totals rows lock them in the same order and cannot deadlock on them.

CREATE FUNCTION ledger_totals_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_member_day AS t
        (period, guild_id, user_id, reserves, settles, refunds, write_offs, grants, resets)
    SELECT period, guild_id, user_id,
        coalesce(sum(amount) FILTER (WHERE kind = 'reserve'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'settle'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'write_off'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'grant'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'reset'), 0)
    FROM added GROUP BY period, guild_id, user_id ORDER BY period, guild_id, user_id
    ON CONFLICT (period, guild_id, user_id) DO UPDATE SET
        reserves = t.reserves + excluded.reserves, settles = t.settles + excluded.settles,
        refunds = t.refunds + excluded.refunds, write_offs = t.write_offs + excluded.write_offs,
        grants = t.grants + excluded.grants, resets = t.resets + excluded.resets;

    INSERT INTO ledger_guild_day AS t
        (period, guild_id, reserves, settles, refunds, write_offs, grants, resets)
    SELECT period, guild_id,
        coalesce(sum(amount) FILTER (WHERE kind = 'reserve'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'settle'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'write_off'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'grant'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'reset'), 0)
    FROM added GROUP BY period, guild_id ORDER BY period, guild_id
    ON CONFLICT (period, guild_id) DO UPDATE SET
        reserves = t.reserves + excluded.reserves, settles = t.settles + excluded.settles,
        refunds = t.refunds + excluded.refunds, write_offs = t.write_offs + excluded.write_offs,
        grants = t.grants + excluded.grants, resets = t.resets + excluded.resets;

    INSERT INTO ledger_day AS t
        (period, reserves, settles, refunds, write_offs, grants, resets)
    SELECT period,
        coalesce(sum(amount) FILTER (WHERE kind = 'reserve'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'settle'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'write_off'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'grant'), 0),
        coalesce(sum(amount) FILTER (WHERE kind = 'reset'), 0)
    FROM added GROUP BY period ORDER BY period
    ON CONFLICT (period) DO UPDATE SET
        reserves = t.reserves + excluded.reserves, settles = t.settles + excluded.settles,
        refunds = t.refunds + excluded.refunds, write_offs = t.write_offs + excluded.write_offs,
        grants = t.grants + excluded.grants, resets = t.resets + excluded.resets;
    RETURN NULL;
END;
$$;

-- The only update the ledger allows (0002) takes a member's id out of a row: the row's sums
-- move from the member to the anonymous member 0. Server and day sums do not change (0002
-- keeps period, server, kind and amount fixed). A member row left with nothing in it and no
-- ledger row behind it is deleted, so a forgotten member leaves no trace here either.
CREATE FUNCTION ledger_totals_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        SELECT o.period, o.guild_id, o.user_id, o.kind, o.amount
        FROM old_rows AS o JOIN new_rows AS n USING (id)
        WHERE n.user_id <> o.user_id
    ), sums AS (
        SELECT period, guild_id, user_id,
            coalesce(sum(amount) FILTER (WHERE kind = 'reserve'), 0) AS reserves,
            coalesce(sum(amount) FILTER (WHERE kind = 'settle'), 0) AS settles,
            coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunds,
            coalesce(sum(amount) FILTER (WHERE kind = 'write_off'), 0) AS write_offs,
            coalesce(sum(amount) FILTER (WHERE kind = 'grant'), 0) AS grants,
            coalesce(sum(amount) FILTER (WHERE kind = 'reset'), 0) AS resets
        FROM moved GROUP BY period, guild_id, user_id
    )
    UPDATE ledger_member_day AS t SET
        reserves = t.reserves - m.reserves, settles = t.settles - m.settles,
        refunds = t.refunds - m.refunds, write_offs = t.write_offs - m.write_offs,
        grants = t.grants - m.grants, resets = t.resets - m.resets
    FROM sums AS m
    WHERE t.period = m.period AND t.guild_id = m.guild_id AND t.user_id = m.user_id;

    DELETE FROM ledger_member_day AS t
    USING (
        SELECT DISTINCT o.period, o.guild_id, o.user_id
        FROM old_rows AS o JOIN new_rows AS n USING (id)
        WHERE n.user_id <> o.user_id
    ) AS m
    WHERE t.period = m.period AND t.guild_id = m.guild_id AND t.user_id = m.user_id
      AND t.reserves = 0 AND t.settles = 0 AND t.refunds = 0 AND t.write_offs = 0
      AND t.grants = 0 AND t.resets = 0
      AND NOT EXISTS (
          SELECT 1 FROM ledger AS l
          WHERE l.period = m.period AND l.guild_id = m.guild_id AND l.user_id = m.user_id
      );

    INSERT INTO ledger_member_day AS t
        (period, guild_id, user_id, reserves, settles, refunds, write_offs, grants, resets)
    SELECT n.period, n.guild_id, n.user_id,
        coalesce(sum(n.amount) FILTER (WHERE n.kind = 'reserve'), 0),
        coalesce(sum(n.amount) FILTER (WHERE n.kind = 'settle'), 0),
        coalesce(sum(n.amount) FILTER (WHERE n.kind = 'refund'), 0),
        coalesce(sum(n.amount) FILTER (WHERE n.kind = 'write_off'), 0),
        coalesce(sum(n.amount) FILTER (WHERE n.kind = 'grant'), 0),
        coalesce(sum(n.amount) FILTER (WHERE n.kind = 'reset'), 0)
    FROM new_rows AS n JOIN old_rows AS o USING (id)
    WHERE n.user_id <> o.user_id
    GROUP BY n.period, n.guild_id, n.user_id ORDER BY n.period, n.guild_id, n.user_id
    ON CONFLICT (period, guild_id, user_id) DO UPDATE SET
        reserves = t.reserves + excluded.reserves, settles = t.settles + excluded.settles,
        refunds = t.refunds + excluded.refunds, write_offs = t.write_offs + excluded.write_offs,
        grants = t.grants + excluded.grants, resets = t.resets + excluded.resets;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_totals_add AFTER INSERT ON ledger
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_add();

CREATE TRIGGER ledger_totals_move AFTER UPDATE ON ledger
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_move();
