-- Finding held leases (at start, and when instances die) must not scan every connection.
CREATE INDEX connections_leased ON connections (lease_owner) WHERE lease_owner IS NOT NULL;
