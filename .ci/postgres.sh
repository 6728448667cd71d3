#!/bin/sh
# Start the local PostgreSQL 15 cluster and provision the role and database the tests use:
#   postgresql+psycopg://titus:titus@127.0.0.1:5432/titus_test
# The role may create databases: under pytest-xdist each worker makes its own on first use
# (titus_test_gw0, titus_test_gw1, ...; see tests/postgres_db.py).
# Idempotent: safe to run again. Needs root (or the postgres user) on a Debian-style install.
set -eu
pg_ctlcluster 15 main start 2>/dev/null || true
for i in 1 2 3 4 5 6 7 8 9 10; do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
run_sql() { cd / && su postgres -c "psql -v ON_ERROR_STOP=1 -qtA -c \"$1\""; }
[ "$(run_sql "SELECT 1 FROM pg_roles WHERE rolname='titus'")" = "1" ] \
  || run_sql "CREATE ROLE titus LOGIN PASSWORD 'titus'"
[ "$(run_sql "SELECT rolcreatedb FROM pg_roles WHERE rolname='titus'")" = "t" ] \
  || run_sql "ALTER ROLE titus CREATEDB"
[ "$(run_sql "SELECT 1 FROM pg_database WHERE datname='titus_test'")" = "1" ] \
  || run_sql "CREATE DATABASE titus_test OWNER titus"
echo "PostgreSQL ready: postgresql+psycopg://titus:titus@127.0.0.1:5432/titus_test"
