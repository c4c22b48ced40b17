package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/search"
	"github.com/saisei-health/platform/services/catalog/internal/service"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// MakeHandler serves the catalog's HTTP API. Its reads are for anyone; the
// /v1/admin routes need a token of role admin.
//
// version names the search index's current content and day; the encoded
// search answers are kept per version.
func MakeHandler(e Endpoints, creds CredentialEndpoints, version func() string, log *slog.Logger, guard *identity.Guard) http.Handler {
	opts := httpkit.ServerOptions(log, problems)
	r := httpkit.NewRouter()
	adminOnly := guard.Require(identity.Admin)
	// The public reads are the same for everyone: compressed, and kept by
	// a frontend or CDN for a minute, then revalidated by ETag. Searches
	// are answered from the in-memory index, so each distinct search is
	// encoded once per version of the index (and Tokyo day: bookability)
	// and language.
	public := func(pattern string, ep func(context.Context, any) (any, error), dec kithttp.DecodeRequestFunc, key httpkit.MemoKey) {
		r.Handle(pattern, httpkit.Public(kithttp.NewServer(ep, dec, httpkit.EncodeResponse, opts...), publicMaxAge, key))
	}
	public("GET /v1/treatments", e.SearchTreatments, decodeSearch, func(r *http.Request) string {
		return version() + "|" + lang(r) + "|" + r.URL.RawQuery
	})
	public("GET /v1/treatments/{id}", e.GetTreatment, decodeGetTreatment, nil)
	public("GET /v1/conditions", e.ListConditions, func(_ context.Context, r *http.Request) (any, error) { return lang(r), nil }, nil)
	public("GET /v1/conditions/{code}/price-comparison", e.PriceComparison, decodeComparison, nil)

	admin := func(pattern string, ep func(context.Context, any) (any, error), key string) {
		r.Handle(pattern, adminOnly(kithttp.NewServer(ep, decodeAdmin(key), httpkit.EncodeResponse, opts...)))
	}
	admin("POST /v1/admin/clinics", e.CreateClinic, "")
	admin("PATCH /v1/admin/clinics/{id}", e.PatchClinic, "id")
	admin("POST /v1/admin/plans", e.CreatePlan, "")
	admin("PATCH /v1/admin/plans/{number}", e.PatchPlan, "number")
	admin("POST /v1/admin/treatments", e.CreateTreatment, "")
	admin("PATCH /v1/admin/treatments/{id}", e.PatchTreatment, "id")
	for pattern, ep := range map[string]endpoint.Endpoint{
		"POST /v1/admin/clinics/{id}/nats-credentials":                        creds.Issue,
		"GET /v1/admin/clinics/{id}/nats-credentials":                         creds.List,
		"POST /v1/admin/clinics/{id}/nats-credentials/{credential_id}/revoke": creds.Revoke,
	} {
		r.Handle(pattern, adminOnly(kithttp.NewServer(ep, decodeCredential, httpkit.EncodeResponse, opts...)))
	}
	return r
}

// publicMaxAge is how long a client may keep a catalog answer without
// asking again: a price or a plan's status changes rarely, and a minute
// late is harmless (booking asks quoting, which asks the catalog live).
const publicMaxAge = time.Minute

func lang(r *http.Request) string {
	return domain.PickLanguage(r.URL.Query().Get("lang"), r.Header.Get("Accept-Language"))
}

var searchParams = []string{"condition", "city", "cell_source", "route", "autologous", "language", "min_price", "max_price",
	"price_currency", "bookable", "q", "limit", "cursor", "lang"}

// maxPriceFilter bounds the price filters: a trillion minor units is above
// any treatment in any of the currencies, and keeps the conversion between
// currencies far from overflowing.
const maxPriceFilter = 1_000_000_000_000

func decodeSearch(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	var v validation.Validator
	for key := range q {
		v.Check(slices.Contains(searchParams, key), key, "is not a filter of this endpoint ("+strings.Join(searchParams, ", ")+")")
	}
	enum := func(key string, allowed []string) string {
		val := q.Get(key)
		v.Check(val == "" || slices.Contains(allowed, val), key, "must be one of "+strings.Join(allowed, ", "))
		return val
	}
	boolean := func(key string) *bool {
		switch q.Get(key) {
		case "":
			return nil
		case "true":
			t := true
			return &t
		case "false":
			f := false
			return &f
		}
		v.Check(false, key, "must be true or false")
		return nil
	}
	f := service.Filter{Query: search.Query{
		Condition: enum("condition", domain.Conditions), City: enum("city", domain.Cities),
		CellSource: enum("cell_source", domain.CellSources), Route: enum("route", domain.Routes),
		Language: enum("language", domain.Languages), Autologous: boolean("autologous"), Bookable: boolean("bookable"),
		Text: q.Get("q"), After: q.Get("cursor"),
	}}
	v.Check(len(f.Text) <= 200, "q", "must be at most 200 characters")
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= search.MaxLimit, "limit", fmt.Sprintf("must be 1 to %d", search.MaxLimit))
		f.Limit = n
	}
	currency := money.JPY
	if s := q.Get("price_currency"); s != "" {
		c, err := money.ParseCurrency(s)
		v.Check(err == nil, "price_currency", "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD")
		currency = c
	}
	price := func(key string) *money.Money {
		s := q.Get(key)
		if s == "" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		v.Check(err == nil && n >= 0 && n <= maxPriceFilter, key,
			fmt.Sprintf("must be an integer amount from 0 to %d in minor units of price_currency", maxPriceFilter))
		m := money.New(n, currency)
		return &m
	}
	f.MinPrice, f.MaxPrice = price("min_price"), price("max_price")
	if f.MinPrice != nil && f.MaxPrice != nil {
		v.Check(f.MinPrice.Amount <= f.MaxPrice.Amount, "max_price", "must not be below min_price")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	display := money.Currency("")
	if q.Get("price_currency") != "" {
		display = currency
	}
	return searchRequest{filter: f, lang: lang(r), display: display}, nil
}

func decodeGetTreatment(_ context.Context, r *http.Request) (any, error) {
	req := getTreatmentRequest{id: r.PathValue("id"), lang: lang(r)}
	if s := r.URL.Query().Get("price_currency"); s != "" {
		c, err := money.ParseCurrency(s)
		if err != nil {
			return nil, httpkit.Invalid(validation.FieldError{Field: "price_currency", Message: "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD"})
		}
		req.display = c
	}
	return req, nil
}

func decodeComparison(_ context.Context, r *http.Request) (any, error) {
	req := comparisonRequest{condition: r.PathValue("code"), lang: lang(r), currency: money.USD}
	if s := r.URL.Query().Get("currency"); s != "" {
		c, err := money.ParseCurrency(s)
		if err != nil {
			return nil, httpkit.Invalid(validation.FieldError{Field: "currency", Message: "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD"})
		}
		req.currency = c
	}
	return req, nil
}

func decodeAdmin(key string) kithttp.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		body, err := io.ReadAll(io.LimitReader(r.Body, httpkit.MaxBody+1))
		if err != nil {
			return nil, err
		}
		if len(body) > httpkit.MaxBody {
			return nil, httpkit.ProblemPayloadTooLarge.New("")
		}
		req := adminRequest{body: body}
		if key != "" {
			req.key = r.PathValue(key)
		}
		return req, nil
	}
}

// Catalog's problem types, beyond httpkit's own.
var (
	problemNotFound           = httpkit.DefineProblem(http.StatusNotFound, "not-found", "Not found")
	problemExists             = httpkit.DefineProblem(http.StatusConflict, "already-exists", "Already exists")
	problemTooManyCredentials = httpkit.DefineProblem(http.StatusConflict, "too-many-credentials",
		"The clinic holds as many NATS credentials as it may")
	problemCredentialsUnconfigured = httpkit.DefineProblem(http.StatusNotImplemented, "nats-credentials-unconfigured",
		"This deployment's NATS credentials are issued by its NATS operator, not the API")
)

// problems maps the catalog's errors; field errors need no rule.
var problems = httpkit.ProblemTable{
	{Convert: httpkit.FromJSONError}, // admin documents are decoded by the service
	{Convert: func(err error) *httpkit.Problem {
		if errors.Is(err, search.ErrBadCursor) {
			return httpkit.Invalid(validation.FieldError{Field: "cursor", Message: "is not a cursor from a previous page"})
		}
		return nil
	}},
	{Err: service.ErrNotFound, Type: problemNotFound},
	{Err: service.ErrExists, Type: problemExists},
	{Err: service.ErrTooManyCredentials, Type: problemTooManyCredentials},
	{Err: service.ErrCredentialsUnconfigured, Type: problemCredentialsUnconfigured},
	{Err: service.ErrNATSUnavailable, Type: httpkit.ProblemDependencyUnavailable},
}
