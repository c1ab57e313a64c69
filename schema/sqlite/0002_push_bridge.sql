-- The push bridge: a webhook per consumer, its delivery state, the attempt log, and settings.
-- Everything the bridge needs to resume after a restart lives here, not in timers.

CREATE TABLE webhooks (
  consumer_id TEXT PRIMARY KEY REFERENCES consumers (id) ON DELETE CASCADE,
  url         TEXT    NOT NULL,
  method      TEXT    NOT NULL,
  headers     TEXT    NOT NULL,         -- JSON object of extra request headers
  secret      TEXT    NOT NULL,         -- whsec_…; kept to sign, never returned after creation
  timeout_ms  INTEGER NOT NULL,
  enabled     INTEGER NOT NULL,         -- 1: the consumer is in push mode
  -- State of the event the bridge is stuck on (the first matching event after the cursor).
  attempt          INTEGER NOT NULL DEFAULT 0,  -- failed attempts on it so far
  first_failure_at INTEGER,                     -- unix ms of its first failed attempt
  next_attempt_at  INTEGER,                     -- unix ms; NULL: as soon as possible
  -- Health, for people.
  last_success_at      INTEGER,
  last_error           TEXT,
  last_status          INTEGER,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  disabled_reason      TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE deliveries (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  consumer_id TEXT    NOT NULL,
  event_id    TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  status      INTEGER,                  -- HTTP status, NULL when no answer came
  error       TEXT,                     -- timeout, refused, reset, http_status, …; NULL on 2xx
  duration_ms INTEGER NOT NULL,
  at          INTEGER NOT NULL,
  next_attempt_at INTEGER
);
CREATE INDEX deliveries_by_consumer ON deliveries (consumer_id, id);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
