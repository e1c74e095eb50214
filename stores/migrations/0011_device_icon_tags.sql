-- A device's icon and tags, chosen by its users (the design brief's device metadata:
-- room, icon, tags), beside the name and room they already choose (issue #19).
-- NULL = not chosen: the hub's own (its descriptor's extra) is shown instead.
ALTER TABLE device_overrides ADD COLUMN IF NOT EXISTS icon text;
ALTER TABLE device_overrides ADD COLUMN IF NOT EXISTS tags text[];
