-- The gateway's adversarial corpus: every bypass class of shared BYPASSES.md, mapped onto the
-- reference dmv schema. `gateway self-test` runs it against a live database; the test suite runs it
-- for noninterference on two databases that differ only in classified values.
--
-- Blocks are separated by blank lines. Meta lines: `-- class:` (BYPASSES.md class), `-- as:` one
-- or more profiles (clerk = dmv_clerk/service_delivery, clerk0 = dmv_clerk without purpose,
-- ice = ice_ero/civil_immigration_enforcement, cbi = cbi_analyst/criminal_law_enforcement with a case
-- number, auditor), `-- expect:` allow | redact | deny, optional `-- reason:` (a substring of the
-- message) and `-- redacted:` (the columns returned as NULL).

-- class: 1 function wrapping
-- as: clerk, clerk0
-- expect: deny
-- reason: function argument
SELECT concat(immigration_status) FROM dmv.lawful_presence

-- class: 1 function wrapping
-- as: clerk, clerk0
-- expect: deny
SELECT lower(immigration_status) AS s FROM dmv.lawful_presence

-- class: 1 function wrapping
-- as: clerk
-- expect: deny
SELECT immigration_status || '' FROM dmv.lawful_presence

-- class: 1 function wrapping
-- as: clerk
-- expect: deny
-- reason: cast
SELECT immigration_status::text FROM dmv.lawful_presence

-- class: 1 function wrapping
-- as: clerk
-- expect: deny
SELECT format('%s', credential_type) FROM dmv.licenses

-- class: 1 function wrapping
-- as: clerk
-- expect: deny
SELECT md5(country_of_citizenship) FROM dmv.persons

-- class: 2 whole-row, JSON and array forms
-- as: clerk, clerk0
-- expect: deny
-- reason: whole-row
SELECT lp FROM dmv.lawful_presence lp

-- class: 2 whole-row, JSON and array forms
-- as: clerk
-- expect: deny
SELECT row_to_json(lp) FROM dmv.lawful_presence lp

-- class: 2 whole-row, JSON and array forms
-- as: clerk
-- expect: deny
SELECT to_jsonb(p.*) FROM dmv.persons p

-- class: 2 whole-row, JSON and array forms
-- as: clerk
-- expect: deny
SELECT json_agg(l) FROM dmv.licenses l

-- class: 2 whole-row, JSON and array forms
-- as: clerk
-- expect: deny
-- reason: aggregate
SELECT array_agg(immigration_status) FROM dmv.lawful_presence

-- class: 2 whole-row, JSON and array forms
-- as: clerk
-- expect: deny
SELECT string_agg(document_type, ',') FROM dmv.identity_documents

-- class: 2 whole-row, JSON and array forms
-- as: clerk
-- expect: redact
-- redacted: immigration_status, verification_method, save_case_number, verified_on
TABLE dmv.lawful_presence

-- class: 2 whole-row, JSON and array forms
-- as: ice
-- expect: deny
TABLE dmv.persons

-- class: 3 predicate oracles
-- as: clerk, clerk0
-- expect: deny
-- reason: WHERE
SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'DACA'

-- class: 3 predicate oracles
-- as: ice
-- expect: deny
-- reason: any form
SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'DACA'

-- class: 3 predicate oracles
-- as: clerk
-- expect: deny
SELECT person_id FROM dmv.lawful_presence WHERE immigration_status LIKE 'A%'

-- class: 3 predicate oracles
-- as: clerk
-- expect: deny
SELECT person_id FROM dmv.lawful_presence WHERE substr(immigration_status, 1, 1) = 'N'

-- class: 3 predicate oracles
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.licenses WHERE credential_type = 'CO_RCSA'

-- class: 3 predicate oracles
-- as: clerk
-- expect: deny
SELECT first_name FROM dmv.persons WHERE place_of_birth NOT LIKE '%Colorado%'

-- class: 4 error oracle
-- as: clerk
-- expect: deny
-- reason: CASE
SELECT CASE WHEN immigration_status = 'DACA' THEN 1/0 END FROM dmv.lawful_presence

-- class: 4 error oracle
-- as: clerk
-- expect: deny
SELECT immigration_status::int FROM dmv.lawful_presence

-- class: 4 error oracle
-- as: clerk
-- expect: deny
SELECT CASE WHEN credential_type = 'CO_RCSA' THEN pg_sleep(1) END FROM dmv.licenses

-- class: 4 error oracle
-- as: clerk
-- expect: deny
SELECT 1 / (CASE WHEN immigration_status = 'TPS' THEN 0 ELSE 1 END) FROM dmv.lawful_presence

-- class: 4 error oracle
-- as: clerk
-- expect: deny
SELECT CAST(document_number AS bigint) FROM dmv.identity_documents

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
-- reason: GROUP BY
SELECT immigration_status, count(*) FROM dmv.lawful_presence GROUP BY immigration_status

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.lawful_presence GROUP BY lower(substring(immigration_status, 1, 1)) UNION ALL SELECT 1

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
SELECT count(*) FILTER (WHERE immigration_status = 'DACA') FROM dmv.lawful_presence

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
-- reason: ORDER BY
SELECT person_id FROM dmv.lawful_presence ORDER BY immigration_status LIMIT 5

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
SELECT person_id, immigration_status FROM dmv.lawful_presence ORDER BY 2

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
-- reason: DISTINCT
SELECT DISTINCT immigration_status FROM dmv.lawful_presence

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
-- reason: window
SELECT person_id, rank() OVER (ORDER BY immigration_status) FROM dmv.lawful_presence

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
SELECT DISTINCT ON (credential_type) license_id FROM dmv.licenses

-- class: 5 grouping and ordering reconstruction
-- as: clerk
-- expect: deny
SELECT count(DISTINCT issuing_country) FROM dmv.identity_documents

-- class: 6 joins on the protected column
-- as: clerk
-- expect: deny
-- reason: JOIN
SELECT s.label FROM dmv.lawful_presence lp JOIN (VALUES ('DACA', 'a'), ('TPS', 'b')) AS s(code, label) ON s.code = lp.immigration_status

-- class: 6 joins on the protected column
-- as: clerk
-- expect: deny
SELECT p.first_name FROM dmv.persons p JOIN dmv.identity_documents d ON d.person_id = p.person_id AND d.document_type = 'FOREIGN_PASSPORT'

-- class: 6 joins on the protected column
-- as: clerk
-- expect: deny
SELECT a.person_id FROM dmv.lawful_presence a JOIN dmv.lawful_presence b ON a.immigration_status = b.immigration_status AND a.person_id < b.person_id LIMIT 10

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
-- reason: set operation
SELECT immigration_status FROM dmv.lawful_presence UNION SELECT 'x'

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
SELECT 'DACA' INTERSECT SELECT immigration_status FROM dmv.lawful_presence

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
SELECT immigration_status FROM dmv.lawful_presence EXCEPT SELECT 'US_CITIZEN'

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
WITH s AS (SELECT person_id, immigration_status AS st FROM dmv.lawful_presence) SELECT person_id FROM s WHERE st = 'TPS'

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
SELECT x.pid FROM (SELECT person_id AS pid, immigration_status AS st FROM dmv.lawful_presence) x WHERE x.st <> 'US_CITIZEN'

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
SELECT p.person_id, z.c FROM dmv.persons p, LATERAL (SELECT count(*) AS c FROM dmv.lawful_presence l WHERE l.person_id = p.person_id AND l.immigration_status = 'DACA') z

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
-- reason: subquery
SELECT (SELECT immigration_status FROM dmv.lawful_presence l WHERE l.person_id = p.person_id) FROM dmv.persons p

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
SELECT first_name FROM dmv.persons p WHERE EXISTS (SELECT 1 FROM dmv.lawful_presence l WHERE l.person_id = p.person_id AND l.immigration_status = 'NO_LAWFUL_PRESENCE')

-- class: 7 set operations and nesting
-- as: clerk
-- expect: deny
SELECT first_name FROM dmv.persons WHERE person_id IN (SELECT person_id FROM dmv.lawful_presence WHERE immigration_status = 'DACA')

-- class: 7 set operations and nesting
-- as: clerk
-- expect: redact
-- redacted: st
WITH s AS (SELECT person_id, immigration_status AS st FROM dmv.lawful_presence) SELECT person_id, st FROM s

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SELECT count(*) FROM "dmv"."lawful_presence" WHERE "immigration_status" = 'DACA'

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SELECT count(*) FROM DMV.Lawful_Presence WHERE Immigration_Status = 'DACA'

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SELECT U&"immigr\0061tion_status" FROM dmv.lawful_presence

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SELECT count(*) FROM lawful_presence AS persons WHERE persons.immigration_status = 'DACA'

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SET search_path = public, dmv

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SET client_encoding = 'SQL_ASCII'

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SET standard_conforming_strings = off

-- class: 8 name tricks
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'a\'; SELECT 1 --'

-- class: 9 laundering into other objects
-- as: clerk, cbi
-- expect: deny
CREATE TABLE public.t AS SELECT immigration_status AS color FROM dmv.lawful_presence

-- class: 9 laundering into other objects
-- as: clerk, cbi
-- expect: deny
SELECT immigration_status INTO public.t2 FROM dmv.lawful_presence

-- class: 9 laundering into other objects
-- as: clerk, cbi
-- expect: deny
INSERT INTO dmv.vehicles SELECT * FROM dmv.vehicles

-- class: 9 laundering into other objects
-- as: clerk, cbi
-- expect: deny
CREATE VIEW public.v AS SELECT immigration_status AS color FROM dmv.lawful_presence

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
DECLARE c CURSOR FOR SELECT immigration_status FROM dmv.lawful_presence

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
COPY (SELECT immigration_status FROM dmv.lawful_presence) TO STDOUT

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
COPY dmv.lawful_presence TO PROGRAM 'cat > /tmp/x'

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
PREPARE p AS SELECT immigration_status FROM dmv.lawful_presence

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
EXECUTE p

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
EXPLAIN (ANALYZE, VERBOSE) SELECT * FROM dmv.lawful_presence WHERE immigration_status = 'DACA'

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
DO $$ BEGIN RAISE NOTICE '%', (SELECT immigration_status FROM dmv.lawful_presence LIMIT 1); END $$

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
CALL public.leak()

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
UPDATE dmv.lawful_presence SET person_id = person_id RETURNING immigration_status

-- class: 10 other statement forms
-- as: clerk, cbi
-- expect: deny
WITH d AS (DELETE FROM dmv.violations RETURNING *) SELECT count(*) FROM d

-- class: 10 other statement forms
-- as: clerk
-- expect: deny
SELECT immigration_status FROM dmv.lawful_presence FOR UPDATE

-- class: 11 unparseable input passes through
-- as: clerk
-- expect: deny
SELECT immigration_status FROM dmv.lawful_presence WHERE immigration_status @@@ 'x' ~~~ 'y'

-- class: 11 unparseable input passes through
-- as: clerk, cbi
-- expect: deny
VACUUM dmv.lawful_presence

-- class: 11 unparseable input passes through
-- as: clerk, cbi
-- expect: deny
SET ROLE postgres

-- class: 11 unparseable input passes through
-- as: clerk
-- expect: deny
SELECT * FROM dmv.lawful_presence WHERE (immigration_status

-- class: 11 unparseable input passes through
-- as: clerk, cbi
-- expect: deny
LISTEN chan

-- class: 11 unparseable input passes through
-- as: clerk, cbi
-- expect: deny
NOTIFY chan, 'x'

-- class: 12 protocol paths that skip inspection
-- as: clerk
-- expect: deny
SELECT 1; SELECT immigration_status FROM dmv.lawful_presence WHERE immigration_status = 'DACA'

-- class: 12 protocol paths that skip inspection
-- as: clerk
-- expect: deny
SELECT person_id FROM dmv.lawful_presence WHERE immigration_status = $1

-- class: 12 protocol paths that skip inspection
-- as: clerk
-- expect: deny
SELECT 1;; SELECT count(*) FROM dmv.licenses WHERE credential_type = 'CO_RCSA'

-- class: 12 protocol paths that skip inspection
-- as: clerk, cbi
-- expect: deny
COPY dmv.vehicles FROM STDIN

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi, ice
-- expect: deny
SELECT most_common_vals FROM pg_stats WHERE attname = 'immigration_status'

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT histogram_bounds FROM pg_catalog.pg_stats WHERE tablename = 'lawful_presence'

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT stavalues1 FROM pg_statistic

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT query FROM pg_stat_activity

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT pg_read_file('/etc/passwd')

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT lo_get(1234)

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)

-- class: 13 catalog and statistics leaks
-- as: clerk
-- expect: deny
SELECT reltuples FROM pg_class WHERE relname = 'lawful_presence' AND reltuples > 0

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT pg_relation_size('dmv.lawful_presence')

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT pg_table_size('dmv.lawful_presence')

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT pg_catalog.pg_total_relation_size('dmv.lawful_presence'::regclass)

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT pg_column_size(lp.immigration_status) FROM dmv.lawful_presence lp WHERE lp.person_id = 1

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT n.nspname AS "Schema", c.relname AS "Name", pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) AS "Size" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','') AND n.nspname OPERATOR(pg_catalog.~) '^(dmv)$' COLLATE pg_catalog.default ORDER BY 1,2

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT relname, n_live_tup, n_dead_tup FROM pg_catalog.pg_stat_user_tables WHERE schemaname = 'dmv'

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT heap_blks_read FROM pg_statio_user_tables WHERE relname = 'lawful_presence'

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: redact
-- redacted: relpages, reltuples
SELECT c.relname, c.relpages, c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = 'dmv.lawful_presence'::regclass

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi, ice
-- expect: allow
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), 'dmv.lawful_presence'::regclass::oid > 0 FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'dmv.lawful_presence'::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: allow
SELECT t.typname FROM pg_catalog.pg_type t WHERE t.oid = any('{23,25}'::oid[]) AND t.typname <> ALL('{x}'::text[]) ORDER BY 1

-- class: 13 catalog and statistics leaks
-- as: clerk, cbi
-- expect: deny
SELECT query_to_xml('select immigration_status from dmv.lawful_presence', true, true, '')

-- class: 14 covert channels through constraints
-- as: clerk, cbi
-- expect: deny
INSERT INTO dmv.licenses (license_id, person_id, license_number) VALUES (1, 1, 'X')

-- class: 14 covert channels through constraints
-- as: clerk, cbi
-- expect: deny
INSERT INTO dmv.lawful_presence (person_id) VALUES (1) ON CONFLICT DO NOTHING

-- class: 14 covert channels through constraints
-- as: clerk
-- expect: deny
SELECT nextval('public.s')

-- class: 15 reversible masks
-- as: clerk
-- expect: deny
SELECT sha256(immigration_status::bytea) FROM dmv.lawful_presence

-- class: 15 reversible masks
-- as: clerk
-- expect: deny
SELECT md5(immigration_status) = md5('DACA') FROM dmv.lawful_presence

-- class: 15 reversible masks
-- as: clerk
-- expect: deny
SELECT hashtext(issuing_country) FROM dmv.identity_documents

-- class: 15 reversible masks
-- as: clerk
-- expect: redact
-- redacted: immigration_status
SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id < 5

-- class: 16 user-defined functions
-- as: clerk, cbi
-- expect: deny
SELECT public.leak_status(person_id) FROM dmv.persons

-- class: 16 user-defined functions
-- as: clerk, cbi
-- expect: deny
SELECT my_udf(person_id) FROM dmv.persons

-- class: 16 user-defined functions
-- as: clerk, cbi
-- expect: deny
SELECT * FROM public.status_of(1)

-- class: 17 inference through proxy fields
-- as: clerk
-- expect: deny
SELECT person_id FROM dmv.identity_documents WHERE document_type = 'EMPLOYMENT_AUTHORIZATION'

-- class: 17 inference through proxy fields
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.persons WHERE itin IS NOT NULL

-- class: 17 inference through proxy fields
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.licenses WHERE limited_term AND license_class = 'C'

-- class: 17 inference through proxy fields
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.persons WHERE zip = '80202' AND country_of_citizenship <> 'United States'

-- class: 17 inference through proxy fields
-- as: clerk
-- expect: deny
SELECT person_id FROM dmv.licenses WHERE federal_limits_apply

-- class: 18 renaming and drift
-- as: clerk
-- expect: deny
SELECT credential_type FROM dmv.driver_summary WHERE credential_type = 'CO_RCSA'

-- class: 18 renaming and drift
-- as: clerk
-- expect: redact
-- redacted: credential_type
SELECT * FROM dmv.driver_summary WHERE person_id < 10

-- class: 18 renaming and drift
-- as: clerk
-- expect: deny
SELECT count(*) FROM dmv.driver_summary GROUP BY credential_type

-- class: 18 renaming and drift
-- as: ice
-- expect: deny
SELECT full_name FROM dmv.driver_summary
