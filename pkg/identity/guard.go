package identity

import (
	"log/slog"
	"net/http"
	"slices"

	"github.com/saisei-health/platform/pkg/httpkit"
)

// The answers of a guarded route.
var (
	ProblemUnauthorized = httpkit.DefineProblem(http.StatusUnauthorized, "unauthorized", "Authentication required")
	ProblemForbidden    = httpkit.DefineProblem(http.StatusForbidden, "forbidden", "Not allowed for this role")
)

// Guard puts routes behind a token.
type Guard struct {
	verifier *Verifier
	log      *slog.Logger
}

// NewGuard returns a Guard verifying with v; refused tokens are logged (the
// reason, never the token) to log.
func NewGuard(v *Verifier, log *slog.Logger) *Guard { return &Guard{verifier: v, log: log} }

// Require lets a request through only with a valid token of one of roles,
// and gives the handler its Principal (FromContext). No token, or one that
// does not verify, is 401 with WWW-Authenticate (RFC 6750); another role is
// 403. Which records the caller may see is the handler's to decide: another
// tenant's record answers 404, as one that does not exist.
func (g *Guard) Require(roles ...Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearer(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="saisei"`)
				httpkit.WriteProblem(w, ProblemUnauthorized.New("send Authorization: Bearer <token>"))
				return
			}
			p, err := g.verifier.Verify(r.Context(), raw)
			if err != nil {
				// The reason stays in the server's logs; the caller learns
				// only that the token is not accepted.
				g.log.InfoContext(r.Context(), "token refused", "path", r.URL.Path, "reason", err.Error())
				w.Header().Set("WWW-Authenticate", `Bearer realm="saisei", error="invalid_token"`)
				httpkit.WriteProblem(w, ProblemUnauthorized.New("the bearer token is not valid"))
				return
			}
			if !slices.Contains(roles, p.Role) {
				httpkit.WriteProblem(w, ProblemForbidden.New("role "+string(p.Role)+" may not "+r.Method+" this endpoint"))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}
