-- Password connections (Reckon's web connector login; later Acumatica): the username, the
-- secret (an argon2 hash for credentials the hub checks, an encrypted envelope for ones it
-- sends), and the throttle on repeated wrong logins.
ALTER TABLE connections ADD COLUMN username TEXT;
ALTER TABLE connections ADD COLUMN secret TEXT;
ALTER TABLE connections ADD COLUMN login_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN login_blocked_until BIGINT;

-- qbXML work for a desktop company file. `request` is the app's document as given; the hub
-- rewrites only requestID, iterator and message-set attributes when it hands it out. While a job
-- is handed out, `exchange` is the token in the postURL its answer must come back to.
CREATE TABLE qbxml_jobs (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    connection_id      TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    priority           BIGINT NOT NULL,
    request            TEXT NOT NULL,
    responses          TEXT NOT NULL,
    pages              TEXT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    restarts           BIGINT NOT NULL DEFAULT 0,
    exchange           TEXT UNIQUE,
    exchange_kind      TEXT,
    exchange_request   TEXT,
    exchange_sent_at   BIGINT,
    continue_state     TEXT UNIQUE,
    iterator_id        TEXT,
    message_set_id     TEXT,
    diagnosis          TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    finished_at        BIGINT
);
-- The queue of one connection in hand-out order, and its job in progress, without scanning the
-- jobs already done (which keep their responses).
CREATE INDEX qbxml_jobs_queue ON qbxml_jobs (connection_id, status, priority DESC, created_at, id);
CREATE INDEX qbxml_jobs_connection ON qbxml_jobs (tenant_id, connection_id, id);
