// Package egress guards requests we send to URLs that outsiders typed, such
// as the webhook endpoints clinics register. Such a URL must never reach our
// own network (SSRF): not a private service, not the cloud metadata endpoint,
// not localhost. CheckURL rejects bad URLs when they are registered, so the
// clinic gets a 422; Client checks again, on the actual IP of every
// connection, because a name that resolved to a public address at
// registration may resolve to a private one at delivery (DNS rebinding).
package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned (wrapped) when a destination is not public.
var ErrForbiddenAddress = errors.New("egress: destination address is not public")

// maxURLLength bounds what we store and send; real webhook URLs are short.
const maxURLLength = 2048

// Policy says which destinations outgoing requests may reach.
type Policy struct {
	// AllowLoopbackHTTP permits http:// URLs on 127.0.0.1 / ::1 / localhost
	// only (a developer's local receiver under `make run`); everything else
	// still needs https and a public address.
	AllowLoopbackHTTP bool
}

// checkError is a CheckURL failure: its message is meant for the clinic (a
// 422 field message), while Unwrap keeps the cause (ErrForbiddenAddress, a
// *net.DNSError) for callers and logs.
type checkError struct {
	msg string
	err error
}

func (e *checkError) Error() string { return e.msg }
func (e *checkError) Unwrap() error { return e.err }

func invalid(msg string) error { return &checkError{msg: msg} }

// CheckURL validates a URL at registration time: it must be absolute, use
// https (or http to a loopback host when AllowLoopbackHTTP), name a host,
// carry no credentials and fit in 2048 bytes; and every address its host
// resolves to (with net.DefaultResolver under ctx) must be allowed. A single
// private address is enough to reject it: we cannot know which one a
// delivery would use. Passing is not enough on its own, since DNS may change
// later; deliveries must also go through Client.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > maxURLLength {
		return invalid("must be at most " + strconv.Itoa(maxURLLength) + " characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("must be a valid URL")
	}
	if !u.IsAbs() || u.Host == "" {
		return invalid("must be an absolute URL")
	}
	if u.User != nil {
		return invalid("must not contain a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return invalid("must name a host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("must have a port between 1 and 65535")
		}
	}
	plain := u.Scheme == "http" // url.Parse lower-cases the scheme
	if !(u.Scheme == "https" || plain && p.AllowLoopbackHTTP && isLoopbackHost(host)) {
		return invalid("must use https")
	}

	addrs, err := resolve(ctx, host)
	if err != nil {
		return &checkError{msg: "host does not resolve", err: err}
	}
	for _, a := range addrs {
		// Plain http is for a local receiver only, so "localhost" must not
		// lead anywhere else.
		if plain && !a.Unmap().IsLoopback() {
			return invalid("must use https")
		}
		if !p.allows(a) {
			return &checkError{msg: "resolves to a private address", err: ErrForbiddenAddress}
		}
	}
	return nil
}

// isLoopbackHost reports whether a URL host names this machine literally.
func isLoopbackHost(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

// resolve returns host's addresses; an IP literal needs no DNS.
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return addrs, err
}

// Client returns an *http.Client for deliveries. Its dialer checks the IP of
// every connection just before connecting, after DNS, so a name rebound to a
// private address is refused (with ErrForbiddenAddress). Redirects are not
// followed (a 3xx is returned as the response): a public endpoint could
// otherwise bounce us anywhere, and the redirect would escape the URL check.
// Environment proxies are ignored, since a proxy would make the connection
// and the dial check would see only the proxy. timeout bounds the whole
// request, body included.
func (p Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   p.control,
	}
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// control is the net.Dialer.Control hook: address is the resolved IP and
// port about to be connected to, so this is the check DNS cannot fool.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
	}
	if !p.allows(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

// allows reports whether the policy lets us connect to a.
func (p Policy) allows(a netip.Addr) bool {
	return isPublic(a) || p.AllowLoopbackHTTP && a.Zone() == "" && a.Unmap().IsLoopback()
}

var (
	// Special-purpose IPv4 ranges that netip has no predicate for.
	blockedV4 = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, often internal in clouds
		netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
		netip.MustParsePrefix("240.0.0.0/4"),   // reserved, includes broadcast 255.255.255.255
	}
	// Only 2000::/3 is allocated as global unicast; everything else in IPv6
	// (::1, ::/96, fc00::/7, fe80::/10, ff00::/8, ...) is special.
	globalV6 = netip.MustParsePrefix("2000::/3")
	// NAT64 (RFC 6052) and 6to4 (RFC 3056) addresses carry an IPv4 address
	// that a gateway will connect to, so that address must be public too.
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// isPublic reports whether a is a public unicast address, one that is safe
// to connect to on an outsider's behalf. Addresses with an IPv6 zone are
// link-scoped and never public.
func isPublic(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	a = a.Unmap() // ::ffff:10.0.0.1 connects to 10.0.0.1
	if a.Is4() {
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
			a.IsMulticast() || a.IsUnspecified() {
			return false
		}
		for _, p := range blockedV4 {
			if p.Contains(a) {
				return false
			}
		}
		return true
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return isPublic(netip.AddrFrom4([4]byte(b[12:16])))
	case sixTo4.Contains(a):
		return isPublic(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return globalV6.Contains(a)
}
