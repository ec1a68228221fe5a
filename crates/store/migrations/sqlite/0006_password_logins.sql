-- Password connections to a server (MYOB Acumatica): where and how to log in (JSON: instance
-- URL, tenant or company, branch), and a key naming the instance and API user, to tell when one
-- API user serves several connections.
ALTER TABLE connections ADD COLUMN options TEXT;
ALTER TABLE connections ADD COLUMN login_key TEXT;
CREATE INDEX connections_login ON connections (tenant_id, login_key) WHERE login_key IS NOT NULL;
