module github.com/saisei-health/platform/scripts/examples/webhook-receiver

go 1.26.0

require github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
