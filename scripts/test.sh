#!/usr/bin/env bash
# `make test`: every test of every module, against real components. Each
# test package that needs Postgres starts its own throwaway cluster (or uses
# SAISEI_TEST_POSTGRES); NATS runs embedded; stripe-mock is built from the
# pinned version; the SMTP sink is in-process.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
make --no-print-directory tools
export STRIPE_MOCK_BIN="$PWD/.bin/stripe-mock"

echo "== gofmt"
unformatted=$(gofmt -l pkg services scripts/examples scripts/chaos scripts/load)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

modules=$(go list -m -f '{{.Path}}/...')
echo "== go vet"
go vet $modules

echo "== layering"
scripts/check-layering.sh

echo "== staticcheck"
# From the repo root, so it runs in workspace mode like vet, with the default
# checks. Generated code (pkg/events) needs no exclusion: staticcheck skips
# files marked "Code generated ... DO NOT EDIT".
.bin/staticcheck $modules

echo "== examples"
# The runnable examples for clinic developers are modules of their own (they
# depend on nothing of ours); they must keep building.
for example in scripts/examples/*/; do
  (cd "$example" && GOWORK=off go vet ./...)
done

echo "== go test"
# -p 2: one package per core; the suite is sized for 2 cores.
go test -count=1 -p 2 -timeout 10m $modules "$@"
