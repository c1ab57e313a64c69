-- Positions per tenant: an event's cursor names its place in its own tenant's log (1, 2, 3, …),
-- so a cursor reveals nothing about other tenants and lag is a subtraction. The global seq stays
-- as the table's rowid (commit order, for retention and for translating older cursors).

-- One row per tenant: the head every append moves, and the trim mark.
CREATE TABLE tenants (
  tenant             TEXT PRIMARY KEY,
  head_pos           INTEGER NOT NULL,
  last_time          INTEGER NOT NULL,   -- time of the newest event; times never decrease along pos
  trimmed_pos        INTEGER NOT NULL,   -- highest position retention removed (0: none)
  legacy_trimmed_seq INTEGER NOT NULL    -- the old trim mark (a global seq), for older cursors
) WITHOUT ROWID;

-- A tenant that lost events to retention before this change gets trim mark 1 and its retained
-- events 2, 3, …: an older cursor behind the old trim mark then translates to 0 (expired).
INSERT INTO tenants (tenant, head_pos, last_time, trimmed_pos, legacy_trimmed_seq)
SELECT tenant, 0, 0, CASE WHEN max(trimmed) > 0 THEN 1 ELSE 0 END, max(trimmed)
FROM (
  SELECT tenant, 0 AS trimmed FROM events GROUP BY tenant
  UNION ALL
  SELECT tenant, trimmed_through FROM tenant_trims
)
GROUP BY tenant;

ALTER TABLE events ADD COLUMN pos INTEGER NOT NULL DEFAULT 0;

UPDATE events SET pos = numbered.pos
FROM (
  SELECT e.seq, t.trimmed_pos + row_number() OVER (PARTITION BY e.tenant ORDER BY e.seq) AS pos
  FROM events e JOIN tenants t ON t.tenant = e.tenant
) AS numbered
WHERE events.seq = numbered.seq;

UPDATE tenants SET
  head_pos = coalesce((SELECT max(pos) FROM events WHERE events.tenant = tenants.tenant), trimmed_pos),
  last_time = coalesce((SELECT max(time) FROM events WHERE events.tenant = tenants.tenant), 0);

-- Committed cursors were global seqs: each becomes the position of the tenant's newest event at
-- or before it (0 when behind the old trim mark, the trim mark when no retained event is).
UPDATE consumers SET cursor = coalesce((
  SELECT CASE
    WHEN consumers.cursor < t.legacy_trimmed_seq THEN 0
    ELSE coalesce(
      (SELECT max(e.pos) FROM events e WHERE e.tenant = consumers.tenant AND e.seq <= consumers.cursor),
      t.trimmed_pos)
  END
  FROM tenants t WHERE t.tenant = consumers.tenant
), 0);

ALTER TABLE consumers ADD COLUMN poll_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consumers ADD COLUMN last_poll_at INTEGER;

UPDATE deliveries SET seq = coalesce((SELECT pos FROM events WHERE events.seq = deliveries.seq), 0);
ALTER TABLE deliveries RENAME COLUMN seq TO pos;

-- Older cursors can name nothing past the last seq issued before this change.
INSERT INTO settings (key, value)
SELECT 'legacy_head_seq', coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0);

CREATE UNIQUE INDEX events_tenant_pos ON events (tenant, pos);
DROP INDEX events_tenant_seq;
DROP TABLE tenant_trims;
