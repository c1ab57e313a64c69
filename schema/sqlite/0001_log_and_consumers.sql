-- The append-only log, per-tenant trim marks, and durable consumers.

-- seq is the log position behind every cursor. AUTOINCREMENT guarantees a
-- position is never handed out twice, even after retention removes the newest rows.
CREATE TABLE events (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  id     TEXT    NOT NULL,            -- producer id or evt_<nanoid>; idempotency key per tenant
  tenant TEXT    NOT NULL,
  type   TEXT    NOT NULL,
  time   INTEGER NOT NULL,            -- commit time, unix ms; never decreases along seq
  data   TEXT    NOT NULL             -- the event's data, serialized JSON
);
CREATE UNIQUE INDEX events_tenant_id ON events (tenant, id);
-- (tenant) implicitly carries the rowid, so this index serves "tenant's events after seq".
CREATE INDEX events_tenant_seq ON events (tenant);

-- How far retention has removed each tenant's events: the highest removed seq.
-- A read position behind this mark has lost events (410 cursor_expired).
CREATE TABLE tenant_trims (
  tenant          TEXT PRIMARY KEY,
  trimmed_through INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE consumers (
  id          TEXT PRIMARY KEY,       -- con_<nanoid>
  tenant      TEXT    NOT NULL,
  name        TEXT,
  filter      TEXT,                   -- normalized filter JSON, NULL = everything
  cursor      INTEGER NOT NULL,       -- committed position: events after it are unread
  key_id      TEXT    NOT NULL,       -- public lookup part of the key
  key_hash    BLOB    NOT NULL,       -- sha256 of the whole key; the key itself is never stored
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX consumers_key_id ON consumers (key_id);
CREATE UNIQUE INDEX consumers_tenant_name ON consumers (tenant, name) WHERE name IS NOT NULL;
CREATE INDEX consumers_tenant ON consumers (tenant);
