-- DEVELOPMENT ONLY. Runs once, when the compose PostgreSQL volume is first created.
-- One database and one login role per service, as in production: no service can connect to
-- another service's database. The password is a throwaway local value used nowhere else.
CREATE ROLE mvno_catalog LOGIN PASSWORD 'dev-only-password';
CREATE DATABASE mvno_catalog OWNER mvno_catalog;
REVOKE ALL ON DATABASE mvno_catalog FROM PUBLIC;

CREATE ROLE mvno_orders LOGIN PASSWORD 'dev-only-password';
CREATE DATABASE mvno_orders OWNER mvno_orders;
REVOKE ALL ON DATABASE mvno_orders FROM PUBLIC;

CREATE ROLE mvno_billing_sync LOGIN PASSWORD 'dev-only-password';
CREATE DATABASE mvno_billing_sync OWNER mvno_billing_sync;
REVOKE ALL ON DATABASE mvno_billing_sync FROM PUBLIC;

CREATE ROLE mvno_portal_api LOGIN PASSWORD 'dev-only-password';
CREATE DATABASE mvno_portal_api OWNER mvno_portal_api;
REVOKE ALL ON DATABASE mvno_portal_api FROM PUBLIC;
