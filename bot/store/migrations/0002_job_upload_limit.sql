-- The upload limit that applies where the job was asked for (the interaction's
-- attachment_size_limit), so a delivery after a restart still knows what fits.
ALTER TABLE jobs ADD COLUMN upload_limit INTEGER;
