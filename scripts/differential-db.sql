-- The scratch database of the differential test (Tests/GateTests/DifferentialTests.swift):
-- every write and every DDL command is logged by the database itself, so the test can compare
-- what the gate decided with what PostgreSQL did. Applied by scripts/pg-test-cluster on every
-- start; idempotent. The log tables and their functions belong to the administrator: the gate's
-- account can read the log but not change it, so no statement through the gate can hide a write.
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.writes (id bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL,
    query text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS audit.ddl (id bigserial PRIMARY KEY, tag text NOT NULL, object text,
    query text, at timestamptz NOT NULL DEFAULT clock_timestamp());
-- Who wrote (the session's application_name, evaluated in the writing session): the cluster is
-- shared, and this script (psql) or the test's direct control write (psycopg, no name) may run
-- while a case does; the test counts only writes by other sessions (its cases name theirs).
ALTER TABLE audit.writes ADD COLUMN IF NOT EXISTS app text DEFAULT current_setting('application_name');
ALTER TABLE audit.ddl ADD COLUMN IF NOT EXISTS app text DEFAULT current_setting('application_name');

CREATE OR REPLACE FUNCTION audit.log_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO audit.writes (tbl, op, query) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, current_query());
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION audit.log_ddl() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        INSERT INTO audit.ddl (tag, object, query) VALUES (r.command_tag, r.object_identity, current_query());
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION audit.log_drop() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        INSERT INTO audit.ddl (tag, object, query) VALUES (tg_tag, r.object_identity, current_query());
    END LOOP;
END $$;

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'differential_ddl') THEN
        CREATE EVENT TRIGGER differential_ddl ON ddl_command_end EXECUTE FUNCTION audit.log_ddl();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'differential_drop') THEN
        CREATE EVENT TRIGGER differential_drop ON sql_drop EXECUTE FUNCTION audit.log_drop();
    END IF;
END $$;

-- The data the corpus reads and tries to change. Statement-level triggers fire even when no row
-- changes, so an attempted write is seen whatever it matched.
CREATE SCHEMA IF NOT EXISTS diff;
CREATE TABLE IF NOT EXISTS diff.items (id int PRIMARY KEY, name text NOT NULL, price numeric NOT NULL);
INSERT INTO diff.items VALUES (1, 'anvil', 10), (2, 'rope', 2.5), (3, 'bell', 7) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS diff.refunds (id int PRIMARY KEY, item int NOT NULL, amount numeric NOT NULL);
INSERT INTO diff.refunds VALUES (1, 1, 10), (2, 3, 7) ON CONFLICT DO NOTHING;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['diff.items', 'diff.refunds'] LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'differential_write' AND tgrelid = t::regclass) THEN
            EXECUTE format('CREATE TRIGGER differential_write AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
                            FOR EACH STATEMENT EXECUTE FUNCTION audit.log_write()', t);
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA diff, audit TO tollgate_gate;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA diff TO tollgate_gate;
GRANT CREATE ON SCHEMA diff TO tollgate_gate;
GRANT SELECT ON audit.writes, audit.ddl TO tollgate_gate;
REVOKE ALL ON FUNCTION audit.log_write(), audit.log_ddl(), audit.log_drop() FROM PUBLIC;

-- Code the statement's text names only by a name PostgreSQL resolves on the search path, or runs
-- inside a view (second review of issue 17, Tests/GateTests/DifferentialCorpus.swift `routines`):
-- functions and operators of built-in names, an operator of a new name, views that call a writing
-- function. They belong to the administrator, as code a read-only session finds in place would.
CREATE SCHEMA IF NOT EXISTS diff_review17;
CREATE OR REPLACE FUNCTION diff_review17.writes(int) RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ DELETE FROM diff.refunds WHERE id = 999; SELECT $1 $$;
CREATE OR REPLACE FUNCTION diff_review17.writes2(int, int) RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ DELETE FROM diff.refunds WHERE id = 999; SELECT $1 $$;
CREATE OR REPLACE FUNCTION diff_review17.writes_eq(int, int) RETURNS boolean LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ DELETE FROM diff.refunds WHERE id = 999; SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
-- length(integer): an exact match where pg_catalog's length(text) needs a cast, so it wins
-- whenever this schema is on the path, pg_catalog first or not.
CREATE OR REPLACE FUNCTION diff_review17.length(int) RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ DELETE FROM diff.refunds WHERE id = 999; SELECT 0 $$;
-- lower(text): the same signature as pg_catalog's, so it wins only on a path naming pg_catalog later.
CREATE OR REPLACE FUNCTION diff_review17.lower(text) RETURNS text LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ DELETE FROM diff.refunds WHERE id = 999; SELECT 'x'::text $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_operator WHERE oprname = '#~#' AND oprnamespace = 'diff_review17'::regnamespace) THEN
        CREATE OPERATOR diff_review17.#~# (leftarg = int, rightarg = int, function = diff_review17.writes2);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_operator WHERE oprname = '+' AND oprnamespace = 'diff_review17'::regnamespace) THEN
        CREATE OPERATOR diff_review17.+ (leftarg = int, rightarg = int, function = diff_review17.writes2);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_operator WHERE oprname = '=' AND oprnamespace = 'diff_review17'::regnamespace) THEN
        CREATE OPERATOR diff_review17.= (leftarg = int, rightarg = int, function = diff_review17.writes_eq);
    END IF;
END $$;
-- A function of a table's row type: `i.writes_row` and `(i).writes_row` call it (attribute notation).
CREATE OR REPLACE FUNCTION diff_review17.writes_row(diff.items) RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ DELETE FROM diff.refunds WHERE id = 999; SELECT 0 $$;
CREATE OR REPLACE VIEW diff_review17.writing_view AS SELECT diff_review17.writes(id) AS x FROM diff.items;
CREATE OR REPLACE VIEW diff_review17.view_over_view AS SELECT x FROM diff_review17.writing_view;
GRANT USAGE ON SCHEMA diff_review17 TO tollgate_gate;
GRANT SELECT ON diff_review17.writing_view, diff_review17.view_over_view TO tollgate_gate;
