module github.com/saisei-health/platform/services/e2e

go 1.26.0

require github.com/saisei-health/platform/pkg v0.0.0

replace github.com/saisei-health/platform/pkg => ../../pkg
