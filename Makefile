# Saisei: the two commands are `make run` and `make test`.
# Everything they need is built from pinned versions (scripts/tools/go.mod)
# or installed from Debian (PostgreSQL server binaries) by the scripts.

SHELL := /usr/bin/env bash
SERVICES := catalog quoting booking payment notification gateway
MODULES := $(shell go list -m -f '{{.Path}}/...' 2>/dev/null)

.PHONY: run test bench chaos load build tools proto lint fmt clean help

help:
	@echo "make run    start the whole platform locally (embedded NATS, Postgres in .data/, stripe-mock, SMTP sink)"
	@echo "make test   run every test (unit, component, end-to-end) against real components"
	@echo "make bench  run the benchmarks"
	@echo "make load   measure make run (running beside it): whole sagas, per-step latency, CPU and commits per saga, pgbench (LOAD_FLAGS=...)"
	@echo "make chaos  drive 1,000 bookings while killing services, NATS and Postgres; check every guarantee (CHAOS_FLAGS=...)"
	@echo "make proto  lint the event contracts and regenerate pkg/events"
	@echo "make lint   gofmt, go vet and buf lint"

run: build
	@scripts/ensure-postgres.sh
	@go build -o .bin/devstack ./pkg/devstack/cmd/devstack
	@.bin/devstack

test:
	@scripts/test.sh

# The chaos run starts a platform of its own beside make run's (ports +10000,
# data in .data/chaos); CHAOS_FLAGS passes options (go run ./scripts/chaos -h).
chaos: build
	@scripts/ensure-postgres.sh
	@go build -o .bin/devstack ./pkg/devstack/cmd/devstack
	@go build -o .bin/chaos ./scripts/chaos
	@.bin/chaos $(CHAOS_FLAGS)

# Measures the platform make run is running (start it first, in another
# terminal); LOAD_FLAGS passes options (go run ./scripts/load -h).
load:
	@go build -o .bin/load ./scripts/load
	@.bin/load $(LOAD_FLAGS)

bench: tools
	@scripts/bench.sh

build: tools
	@mkdir -p .bin
	@for s in $(SERVICES); do go build -o .bin/$$s ./services/$$s/cmd/$$s || exit 1; done

# stripe-mock, nats-server and staticcheck are pinned as Go tools; built once into .bin/.
tools: .bin/stripe-mock .bin/staticcheck .bin/nats-server

.bin/nats-server: scripts/tools/go.mod
	@mkdir -p .bin
	@echo "building nats-server (pinned in scripts/tools/go.mod)"
	@cd scripts/tools && GOWORK=off go build -o ../../.bin/nats-server github.com/nats-io/nats-server/v2

.bin/stripe-mock: scripts/tools/go.mod
	@mkdir -p .bin
	@echo "building stripe-mock (pinned in scripts/tools/go.mod)"
	@cd scripts/tools && GOWORK=off go build -o ../../.bin/stripe-mock github.com/stripe/stripe-mock

.bin/staticcheck: scripts/tools/go.mod
	@mkdir -p .bin
	@echo "building staticcheck (pinned in scripts/tools/go.mod)"
	@cd scripts/tools && GOWORK=off go build -o ../../.bin/staticcheck honnef.co/go/tools/cmd/staticcheck

.bin/buf .bin/protoc-gen-go: scripts/tools/go.mod
	@mkdir -p .bin
	@cd scripts/tools && GOWORK=off go build -o ../../.bin/ github.com/bufbuild/buf/cmd/buf google.golang.org/protobuf/cmd/protoc-gen-go

proto: .bin/buf .bin/protoc-gen-go
	@cd proto && PATH="$(CURDIR)/.bin:$$PATH" buf lint && PATH="$(CURDIR)/.bin:$$PATH" buf generate
	@echo "regenerated pkg/events"

lint: .bin/buf
	@test -z "$$(gofmt -l pkg services scripts/chaos scripts/load)" || (gofmt -l pkg services scripts/chaos scripts/load; exit 1)
	@go vet $(MODULES)
	@cd proto && ../.bin/buf lint

fmt:
	@gofmt -w pkg services

clean:
	rm -rf .bin
	@echo "data is kept in .data/; remove it yourself to start from scratch"
