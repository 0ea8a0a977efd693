-- The reference DMV schema (SPEC section 2). Column names and types are fixed by the contract.
-- The seeder drops and recreates schema dmv, runs the part above the `@after-load` marker, loads
-- the rows with COPY, then runs the part below it (constraints and indexes are cheaper built once).

CREATE SCHEMA dmv;

CREATE TABLE dmv.persons (
    person_id              bigint PRIMARY KEY,
    first_name             text NOT NULL,
    last_name              text NOT NULL,
    date_of_birth          date NOT NULL,
    sex                    text NOT NULL,
    place_of_birth         text NOT NULL,
    country_of_citizenship text NOT NULL,
    ssn                    text NULL,
    itin                   text NULL,
    email                  text NOT NULL,
    phone                  text NOT NULL,
    address_line1          text NOT NULL,
    city                   text NOT NULL,
    county                 text NOT NULL,
    zip                    text NOT NULL
);

CREATE TABLE dmv.licenses (
    license_id           bigint PRIMARY KEY,
    person_id            bigint NOT NULL,
    license_number       text NOT NULL,
    license_class        text NOT NULL,
    credential_type      text NOT NULL,   -- REAL_ID, STANDARD, CO_RCSA
    federal_limits_apply boolean NOT NULL,
    limited_term         boolean NOT NULL,
    issue_date           date NOT NULL,
    expiry_date          date NOT NULL,
    status               text NOT NULL
);

CREATE TABLE dmv.identity_documents (
    document_id     bigint PRIMARY KEY,
    person_id       bigint NOT NULL,
    document_type   text NOT NULL,        -- US_BIRTH_CERTIFICATE, US_PASSPORT, FOREIGN_PASSPORT, ...
    issuing_country text NOT NULL,
    document_number text NOT NULL,
    verified_on     date NOT NULL
);

CREATE TABLE dmv.lawful_presence (
    person_id           bigint PRIMARY KEY,
    immigration_status  text NOT NULL,    -- US_CITIZEN, LAWFUL_PERMANENT_RESIDENT, ...
    verification_method text NOT NULL,
    save_case_number    text NULL,
    verified_on         date NOT NULL
);

CREATE TABLE dmv.vehicles (
    vehicle_id      bigint PRIMARY KEY,
    owner_person_id bigint NOT NULL,
    vin             text NOT NULL,
    plate           text NOT NULL,
    make            text NOT NULL,
    model           text NOT NULL,
    model_year      int NOT NULL
);

CREATE TABLE dmv.violations (
    violation_id bigint PRIMARY KEY,
    person_id    bigint NOT NULL,
    license_id   bigint NOT NULL,
    offense_code text NOT NULL,
    offense_date date NOT NULL,
    county       text NOT NULL,
    fine_cents   int NOT NULL,
    disposition  text NOT NULL
);

-- One row per license, joined to its person.
CREATE VIEW dmv.driver_summary AS
SELECT p.person_id,
       p.first_name || ' ' || p.last_name AS full_name,
       l.license_number,
       l.credential_type,
       l.status AS license_status,
       l.expiry_date
  FROM dmv.licenses l
  JOIN dmv.persons p ON p.person_id = l.person_id;

-- @after-load -------------------------------------------------------------------------------------

ALTER TABLE dmv.licenses
    ADD CONSTRAINT licenses_person_id_fkey FOREIGN KEY (person_id) REFERENCES dmv.persons (person_id),
    ADD CONSTRAINT licenses_license_number_key UNIQUE (license_number);
ALTER TABLE dmv.identity_documents
    ADD CONSTRAINT identity_documents_person_id_fkey FOREIGN KEY (person_id) REFERENCES dmv.persons (person_id);
ALTER TABLE dmv.lawful_presence
    ADD CONSTRAINT lawful_presence_person_id_fkey FOREIGN KEY (person_id) REFERENCES dmv.persons (person_id);
ALTER TABLE dmv.vehicles
    ADD CONSTRAINT vehicles_owner_person_id_fkey FOREIGN KEY (owner_person_id) REFERENCES dmv.persons (person_id);
ALTER TABLE dmv.violations
    ADD CONSTRAINT violations_person_id_fkey FOREIGN KEY (person_id) REFERENCES dmv.persons (person_id),
    ADD CONSTRAINT violations_license_id_fkey FOREIGN KEY (license_id) REFERENCES dmv.licenses (license_id);

CREATE INDEX licenses_person_id_idx ON dmv.licenses (person_id);
CREATE INDEX identity_documents_person_id_idx ON dmv.identity_documents (person_id);
CREATE INDEX vehicles_owner_person_id_idx ON dmv.vehicles (owner_person_id);
CREATE INDEX violations_person_id_idx ON dmv.violations (person_id);
CREATE INDEX violations_license_id_idx ON dmv.violations (license_id);
CREATE INDEX persons_last_first_idx ON dmv.persons (last_name, first_name);
