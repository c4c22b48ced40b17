#!/usr/bin/env bash
# Layering rule: a service's domain package (services/*/internal/domain) is
# pure business logic. It does no I/O, knows no transport and no wire format,
# so it can be unit-tested without Postgres, NATS or Stripe, and an adapter
# (store, bus, HTTP, events) can change without touching the rules. Adapters
# depend on the domain, never the other way round.
#
# This fails if a domain package imports, directly or through any other
# package (`go list -deps`), one of the packages below. Test files are not
# checked: only what the domain ships in the service binary.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden=(
  '^github\.com/jackc/pgx(/|$)'                          # Postgres driver (pgx, pgx/v5, ...): storage is the store's job
  '^github\.com/nats-io/'                                # NATS: messaging is the bus's job
  '^github\.com/stripe/'                                 # Stripe client: the payment provider is an adapter
  '^github\.com/saisei-health/platform/pkg/events(/|$)'  # generated protobuf: the events' wire format
  '^github\.com/saisei-health/platform/pkg/httpkit$'     # HTTP transport helpers
  '^go\.opentelemetry\.io/'                              # tracing and metrics live at the edges
)
pattern=$(IFS='|'; echo "${forbidden[*]}")

# Run from the repo root so go.work applies and every service is seen.
domains=$(go list ./services/*/internal/domain)

status=0
for domain in $domains; do
  # Follow each direct import on its own, so a violation names the import
  # line to remove and not just the domain.
  for imp in $(go list -f '{{join .Imports " "}}' "$domain"); do
    deps=$(go list -deps "$imp")
    # Forbidden packages reached, sorted, with subpackages folded into
    # their parent (pgx/v5/pgconn is reported as pgx/v5).
    bad=$(grep -E "$pattern" <<<"$deps" | sort | awk 'index($0, top "/") != 1 { print; top = $0 }' || true)
    if [ -n "$bad" ]; then
      echo "layering: $domain imports $imp, which brings in:"
      sed 's/^/  /' <<<"$bad"
      status=1
    fi
  done
done

if [ "$status" -ne 0 ]; then
  echo "domain packages must stay pure: move the I/O into an adapter package"
fi
exit "$status"
