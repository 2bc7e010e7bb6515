-- The store's revision: one row, bumped by the first statement of every write transaction.
--
-- Processes sharing the store poll it (a cheap read of one row) to learn that another process
-- changed dashboards or widgets. Bumping it first also orders the writers: on PostgreSQL they
-- queue on this row's lock, on SQLite on the database lock.

CREATE TABLE store_revision (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);

INSERT INTO store_revision (id, revision) VALUES (1, 0);
