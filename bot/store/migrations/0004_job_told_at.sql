-- When the member was told how a job without a video ended. A job that ended (and was refunded)
-- but whose member was never told, because the bot stopped in between, is told at the next start.
ALTER TABLE jobs ADD COLUMN told_at INTEGER;
