-- When the connection last linked its external account (the callback that named it): what a
-- duplicate-link diagnosis reports.
ALTER TABLE connections ADD COLUMN linked_at INTEGER;
UPDATE connections SET linked_at = connected_at WHERE external_account_id IS NOT NULL;
CREATE INDEX connections_tenant_account ON connections (tenant_id, provider, external_account_id)
    WHERE external_account_id IS NOT NULL;

-- Events not yet handed to the alert pipeline (log line, webhooks, email). History from before
-- this migration counts as handed over.
ALTER TABLE connection_events ADD COLUMN dispatched_at INTEGER;
UPDATE connection_events SET dispatched_at = created_at;
CREATE INDEX connection_events_undispatched ON connection_events (seq) WHERE dispatched_at IS NULL;

-- A tenant's webhook endpoints. The signing secret is encrypted by the hub.
CREATE TABLE webhook_subscriptions (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    events           TEXT,
    secret           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    disabled_at      INTEGER,
    disabled_reason  TEXT
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id, id);

-- The durable outbox: one row per (subscription, event), kept as the delivery log. `id` is the
-- `webhook-id` header, the same on every attempt. Deliveries of one subscription and one
-- ordering key (a connection) go out in `event_seq` order.
CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    subscription_id   TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    tenant_id         TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    ordering_key      TEXT NOT NULL,
    event_seq         INTEGER NOT NULL,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    last_attempt_at   INTEGER,
    last_status       INTEGER,
    last_error        TEXT,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    delivered_at      INTEGER,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, ordering_key, event_seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id);

-- Emails to an organisation's users, one per incident (the event that opened it).
CREATE TABLE email_outbox (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    connection_id     TEXT NOT NULL,
    event_id          TEXT NOT NULL UNIQUE,
    recipients        TEXT NOT NULL,
    subject           TEXT NOT NULL,
    body              TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    last_error        TEXT,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    sent_at           INTEGER
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending';
