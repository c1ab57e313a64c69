-- The deadline of the poll held now for a consumer, on whichever node holds it (NULL: none):
-- the ops view's `polling` is cluster-wide. Set when a poll starts waiting, cleared when it
-- ends; a node that dies leaves it until the poll's deadline at most.
ALTER TABLE consumers ADD COLUMN poll_held_until bigint;
