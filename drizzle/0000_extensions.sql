-- Trigram matching for runs(filter: { nameContains }); trusted since PostgreSQL 13.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
