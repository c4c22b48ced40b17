#!/usr/bin/env bash
# `make bench`: the benchmarks, against the same real components as tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
export STRIPE_MOCK_BIN="$PWD/.bin/stripe-mock"
go test -run '^$' -bench . -benchmem -count 1 $(go list -m -f '{{.Path}}/...') "$@"
