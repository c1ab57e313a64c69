-- pollgate on PostgreSQL: the per-tenant log, consumers, the push bridge, leases and nodes.
-- Applied once per database by src/store/postgres/migrate.ts, in one transaction holding the
-- migration advisory lock. Forward-only: never edit a file that has shipped; add the next one.
--
-- Times are unix ms (bigint), booleans 0/1 integers, JSON as text, so rows read the same as
-- SQLite's (tables.ts); only the lease and node clocks are timestamptz, read from now().

-- One row per tenant: the head the append locks before it draws positions, and the trim mark.
CREATE TABLE tenants (
  tenant             text   PRIMARY KEY,
  head_pos           bigint NOT NULL DEFAULT 0,  -- newest position ever drawn (survives trims)
  last_time          bigint NOT NULL DEFAULT 0,  -- time of the newest event: times never decrease
  trimmed_pos        bigint NOT NULL DEFAULT 0,  -- highest position retention removed
  legacy_trimmed_seq bigint NOT NULL DEFAULT 0   -- migrated deployments: highest global seq removed
);

-- The log. pos is dense per tenant (1, 2, 3, …), drawn from tenants.head_pos under its row lock.
CREATE TABLE events (
  tenant     text   NOT NULL,
  pos        bigint NOT NULL,
  id         text   NOT NULL,   -- producer id or evt_…; idempotency key per tenant
  type       text   NOT NULL,
  time       bigint NOT NULL,   -- commit time, unix ms; never decreases along pos
  data       text   NOT NULL,   -- serialized JSON
  legacy_seq bigint,            -- the global seq of an event migrated from SQLite (else NULL)
  PRIMARY KEY (tenant, pos)
);
CREATE UNIQUE INDEX events_tenant_id ON events (tenant, id);
-- Retention removes the oldest events across tenants in (time, tenant, pos) order.
CREATE INDEX events_time ON events (time, tenant, pos);
-- "The first event at or after T" of a tenant (start/seek by time).
CREATE INDEX events_tenant_time ON events (tenant, time, pos);
-- Translating cursors issued before positions were per tenant; only migrated rows carry one.
CREATE INDEX events_tenant_legacy_seq ON events (tenant, legacy_seq) WHERE legacy_seq IS NOT NULL;

CREATE TABLE consumers (
  id              text    PRIMARY KEY,   -- con_<nanoid>
  tenant          text    NOT NULL,
  name            text,
  filter          text,                  -- normalized filter JSON, NULL = everything
  cursor          bigint  NOT NULL,      -- committed position: events after it are unread
  key_id          text    NOT NULL,      -- public lookup part of the key
  key_hash        bytea   NOT NULL,      -- sha256 of the whole key; the key itself is never stored
  poll_generation bigint  NOT NULL DEFAULT 0,  -- bumped by every poll start, on any node
  last_poll_at    bigint,
  created_at      bigint  NOT NULL,
  updated_at      bigint  NOT NULL
);
CREATE UNIQUE INDEX consumers_key_id ON consumers (key_id);
CREATE UNIQUE INDEX consumers_tenant_name ON consumers (tenant, name) WHERE name IS NOT NULL;
CREATE INDEX consumers_tenant ON consumers (tenant);

CREATE TABLE webhooks (
  consumer_id text    PRIMARY KEY REFERENCES consumers (id) ON DELETE CASCADE,
  url         text    NOT NULL,
  method      text    NOT NULL,
  headers     text    NOT NULL,          -- JSON object of extra request headers
  secret      text    NOT NULL,          -- whsec_…; kept to sign, never returned after creation
  timeout_ms  integer NOT NULL,
  enabled     integer NOT NULL,          -- 1: the consumer is in push mode
  attempt              integer NOT NULL DEFAULT 0,
  first_failure_at     bigint,
  next_attempt_at      bigint,
  last_success_at      bigint,
  last_error           text,
  last_status          integer,
  consecutive_failures integer NOT NULL DEFAULT 0,
  disabled_reason      text,
  created_at  bigint  NOT NULL,
  updated_at  bigint  NOT NULL
);
CREATE INDEX webhooks_enabled ON webhooks (consumer_id) WHERE enabled = 1;

CREATE TABLE deliveries (
  id              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer_id     text    NOT NULL,
  event_id        text    NOT NULL,
  pos             bigint  NOT NULL,
  attempt         integer NOT NULL,
  status          integer,               -- HTTP status, NULL when no answer came
  error           text,                  -- timeout, refused, reset, http_status, …; NULL on 2xx
  duration_ms     integer NOT NULL,
  at              bigint  NOT NULL,
  next_attempt_at bigint
);
CREATE INDEX deliveries_by_consumer ON deliveries (consumer_id, id);
CREATE INDEX deliveries_at ON deliveries (at);

CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- One owner per push consumer. owner NULL: free. epoch only grows while the consumer exists,
-- so a progress write carrying an old epoch is refused (fencing).
CREATE TABLE push_leases (
  consumer_id text        PRIMARY KEY REFERENCES consumers (id) ON DELETE CASCADE,
  owner       text,
  epoch       bigint      NOT NULL DEFAULT 0,
  expires_at  timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE INDEX push_leases_owner ON push_leases (owner);

-- Live nodes, heartbeated by lease claims with the database's clock.
CREATE TABLE nodes (
  node_id text        PRIMARY KEY,
  seen_at timestamptz NOT NULL
);

-- The append (see src/store/postgres/append.ts for the invariants). p_group is a JSON array of
-- events {t: tenant, y: type, i: id, d: data, n: now (unix ms)}; answers one row per element,
-- k being its 1-based index. Tenants are locked in sorted order (two groups touching the same
-- tenants never deadlock); positions are drawn only under the tenant's row lock, from its head
-- row, so commit order is position order within a tenant. Nothing here waits on the client.
CREATE FUNCTION pollgate_append(p_group jsonb, p_lock_timeout_ms integer)
RETURNS TABLE (k bigint, r_pos bigint, r_id text, r_time bigint, r_duplicate boolean, r_type text, r_data text)
LANGUAGE plpgsql AS $fn$
DECLARE
  e        record;
  v_tenant text := NULL;
  v_head   bigint;
  v_start  bigint;
  v_last   bigint;
  v_time   bigint;
BEGIN
  -- SET LOCAL: ends with the transaction (the implicit one of an autocommit statement, too).
  PERFORM set_config('lock_timeout', p_lock_timeout_ms::text || 'ms', true);

  FOR e IN
    SELECT x.ord, x.j ->> 't' AS t, x.j ->> 'y' AS y, x.j ->> 'i' AS i, x.j ->> 'd' AS d,
           (x.j ->> 'n')::bigint AS n
    FROM jsonb_array_elements(p_group) WITH ORDINALITY AS x (j, ord)
    ORDER BY x.j ->> 't' COLLATE "C", x.ord
  LOOP
    IF v_tenant IS DISTINCT FROM e.t THEN
      IF v_tenant IS NOT NULL AND v_head > v_start THEN
        UPDATE tenants SET head_pos = v_head, last_time = v_last WHERE tenant = v_tenant;
      END IF;
      v_tenant := e.t;
      SELECT head_pos, last_time INTO v_head, v_last FROM tenants WHERE tenant = v_tenant FOR UPDATE;
      IF NOT FOUND THEN
        INSERT INTO tenants (tenant) VALUES (v_tenant) ON CONFLICT DO NOTHING;
        SELECT head_pos, last_time INTO v_head, v_last FROM tenants WHERE tenant = v_tenant FOR UPDATE;
      END IF;
      v_start := v_head;
    END IF;

    v_time := GREATEST(e.n, v_last);
    INSERT INTO events (tenant, pos, id, type, time, data)
    VALUES (v_tenant, v_head + 1, e.i, e.y, v_time, e.d)
    ON CONFLICT (tenant, id) DO NOTHING;
    IF FOUND THEN
      v_head := v_head + 1;
      v_last := v_time;
      k := e.ord; r_pos := v_head; r_id := e.i; r_time := v_time;
      r_duplicate := false; r_type := NULL; r_data := NULL;
    ELSE
      -- Already in the tenant's log (earlier, or earlier in this very group): the original.
      SELECT ev.pos, ev.time, ev.type, ev.data INTO r_pos, r_time, r_type, r_data
      FROM events ev WHERE ev.tenant = v_tenant AND ev.id = e.i;
      k := e.ord; r_id := e.i; r_duplicate := true;
    END IF;
    RETURN NEXT;
  END LOOP;

  IF v_tenant IS NOT NULL AND v_head > v_start THEN
    UPDATE tenants SET head_pos = v_head, last_time = v_last WHERE tenant = v_tenant;
  END IF;
END
$fn$;
