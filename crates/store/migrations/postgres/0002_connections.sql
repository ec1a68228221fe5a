-- One link between an organisation and an accounting account. Tokens are encrypted by the hub
-- before they get here. `next_refresh_at` is set only while the hub keeps the connection alive.
CREATE TABLE connections (
    id                         TEXT PRIMARY KEY,
    tenant_id                  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    organisation_id            TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    provider                   TEXT NOT NULL,
    status                     TEXT NOT NULL,
    reason                     TEXT,
    status_since               BIGINT NOT NULL,
    external_account_id        TEXT,
    external_account_name      TEXT,
    last_error                 TEXT,
    redirect_url               TEXT,
    access_token               TEXT,
    access_issued_at           BIGINT,
    access_expires_at          BIGINT,
    refresh_token              TEXT,
    refresh_token_obtained_at  BIGINT,
    scope                      TEXT,
    token_version              BIGINT NOT NULL DEFAULT 0,
    next_refresh_at            BIGINT,
    failures                   BIGINT NOT NULL DEFAULT 0,
    -- Write-ahead marker: a refresh with this (encrypted) refresh token was sent and its
    -- outcome is not yet stored.
    inflight_refresh_token     TEXT,
    inflight_since             BIGINT,
    lease_owner                TEXT,
    lease_expires_at           BIGINT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL,
    connected_at               BIGINT
);
CREATE INDEX connections_tenant ON connections (tenant_id, id);
CREATE INDEX connections_organisation ON connections (tenant_id, organisation_id, id);
CREATE INDEX connections_account ON connections (provider, external_account_id);
CREATE INDEX connections_due ON connections (next_refresh_at) WHERE next_refresh_at IS NOT NULL;

-- OAuth `state` values: single use, expiring, bound to one connection. Stored hashed.
CREATE TABLE oauth_states (
    state_hash     TEXT PRIMARY KEY,
    connection_id  TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    code_verifier  TEXT,
    redirect_uri   TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX oauth_states_connection ON oauth_states (connection_id);

-- Each connection's timeline. `seq` orders events that share a millisecond.
CREATE TABLE connection_events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    tenant_id      TEXT NOT NULL,
    connection_id  TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT,
    detail         TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX connection_events_connection ON connection_events (connection_id, seq);

-- Running hub processes. A refresh lease held by an instance whose heartbeat stopped is taken
-- over within seconds.
CREATE TABLE hub_instances (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
