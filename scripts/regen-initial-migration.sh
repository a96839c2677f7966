#!/usr/bin/env bash
# Regenerate migrations/versions/0001 from the models (only while nothing has been deployed).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/0001_initial_schema.py
.venv/bin/alembic -x x=1 -c alembic.ini \
  -x url="sqlite+aiosqlite:///$tmp/gen.db" revision --autogenerate -m "initial schema" --rev-id 0001 >/dev/null
sed -i 's/astext_type=Text()/astext_type=sa.Text()/' migrations/versions/0001_initial_schema.py
rm -rf "$tmp"
