"""The PostgreSQL tests' server and databases (tests/postgres.py) and CI's no-skip rule come from
tests/store/conftest.py, once for all of tests/store: imported here as well, the session's
server fixture would be a second one, and a second server would start."""
