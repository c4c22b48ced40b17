package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The machine running these tests has no internet, so hosts are IP literals
// (which need no DNS) or localhost (which /etc/hosts answers).

func TestCheckURL(t *testing.T) {
	strict, dev := Policy{}, Policy{AllowLoopbackHTTP: true}
	tests := []struct {
		name    string
		policy  Policy
		url     string
		wantMsg string // "" means accepted
	}{
		{"public https", strict, "https://93.184.216.34/hook", ""},
		{"public https with port", strict, "https://93.184.216.34:8443/hook?x=1", ""},
		{"public IPv6 https", strict, "https://[2606:2800:220:1:248:1893:25c8:1946]/hook", ""},
		{"public http", strict, "http://93.184.216.34/hook", "must use https"},
		{"private", strict, "https://10.0.0.1/hook", "resolves to a private address"},
		{"cloud metadata", strict, "https://169.254.169.254/latest/meta-data/", "resolves to a private address"},
		{"IPv6 loopback", strict, "https://[::1]/hook", "resolves to a private address"},
		{"IPv4-mapped loopback", strict, "https://[::ffff:127.0.0.1]/hook", "resolves to a private address"},
		{"CGNAT", strict, "https://100.64.1.1/hook", "resolves to a private address"},
		{"IPv6 link-local", strict, "https://[fe80::1]/hook", "resolves to a private address"},
		{"localhost", strict, "https://localhost/hook", "resolves to a private address"},
		{"loopback http without dev flag", strict, "http://127.0.0.1:9999/x", "must use https"},
		{"ftp", strict, "ftp://93.184.216.34/hook", "must use https"},
		{"relative", strict, "/hook", "must be an absolute URL"},
		{"scheme-relative", strict, "//93.184.216.34/hook", "must be an absolute URL"},
		{"opaque", strict, "https:93.184.216.34", "must be an absolute URL"},
		{"empty", strict, "", "must be an absolute URL"},
		{"unparsable", strict, "https://93.184.216.34/%zz", "must be a valid URL"},
		{"userinfo", strict, "https://user:pass@93.184.216.34/hook", "must not contain a user name or password"},
		{"user only", strict, "https://user@93.184.216.34/hook", "must not contain a user name or password"},
		{"no host name", strict, "https://:443/hook", "must name a host"},
		{"port out of range", strict, "https://93.184.216.34:70000/", "must have a port between 1 and 65535"},
		{"too long", strict, "https://93.184.216.34/" + strings.Repeat("a", 2048), "must be at most 2048 characters"},

		{"dev loopback http", dev, "http://127.0.0.1:9999/x", ""},
		{"dev localhost http", dev, "http://localhost:9999", ""},
		{"dev IPv6 loopback http", dev, "http://[::1]:9999/x", ""},
		{"dev loopback https", dev, "https://127.0.0.1:9999/x", ""},
		{"dev public https", dev, "https://93.184.216.34/hook", ""},
		{"dev private http", dev, "http://10.0.0.1", "must use https"},
		{"dev public http", dev, "http://93.184.216.34", "must use https"},
		{"dev private https", dev, "https://10.0.0.1", "resolves to a private address"},
		{"dev metadata https", dev, "https://169.254.169.254/", "resolves to a private address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckURL(context.Background(), tt.url)
			switch {
			case tt.wantMsg == "" && err != nil:
				t.Fatalf("CheckURL(%q) = %v, want accepted", tt.url, err)
			case tt.wantMsg != "" && err == nil:
				t.Fatalf("CheckURL(%q) accepted, want %q", tt.url, tt.wantMsg)
			case tt.wantMsg != "" && err.Error() != tt.wantMsg:
				t.Fatalf("CheckURL(%q) = %q, want %q", tt.url, err, tt.wantMsg)
			}
			if err != nil && (tt.wantMsg == "resolves to a private address") != errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("errors.Is(%v, ErrForbiddenAddress) is wrong", err)
			}
		})
	}
}

func TestClientRefusesLoopbackUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	resp, err := Policy{}.Client(5 * time.Second).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a strict client reached a loopback server")
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("error %v does not wrap ErrForbiddenAddress", err)
	}

	resp, err = Policy{AllowLoopbackHTTP: true}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("a dev client could not reach a loopback server: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(http.ResponseWriter, *http.Request) { targetHits.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := Policy{AllowLoopbackHTTP: true}.Client(5 * time.Second).Get(srv.URL + "/hook")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target requested %d times", n)
	}
}

func TestClientTransportSettings(t *testing.T) {
	c := Policy{}.Client(7 * time.Second)
	if c.Timeout != 7*time.Second {
		t.Fatalf("timeout %v", c.Timeout)
	}
	tr := c.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("the transport uses a proxy, which the dial check cannot see past")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Fatal("TLS below 1.2 is allowed")
	}
}

// The dial hook sees resolved addresses, so this is what stops a name
// that was public at registration and was rebound to a private address.
func TestControlChecksTheDialedAddress(t *testing.T) {
	tests := []struct {
		policy  Policy
		address string
		ok      bool
	}{
		{Policy{}, "93.184.216.34:443", true},
		{Policy{}, "[2606:2800:220:1:248:1893:25c8:1946]:443", true},
		{Policy{}, "10.0.0.1:443", false},
		{Policy{}, "169.254.169.254:80", false},
		{Policy{}, "127.0.0.1:8080", false},
		{Policy{}, "[::ffff:192.168.1.1]:443", false},
		{Policy{}, "not-an-address", false},
		{Policy{AllowLoopbackHTTP: true}, "127.0.0.1:8080", true},
		{Policy{AllowLoopbackHTTP: true}, "[::1]:8080", true},
		{Policy{AllowLoopbackHTTP: true}, "10.0.0.1:443", false},
		{Policy{AllowLoopbackHTTP: true}, "[fe80::1%lo]:443", false},
	}
	for _, tt := range tests {
		err := tt.policy.control("tcp", tt.address, nil)
		if tt.ok != (err == nil) {
			t.Errorf("%+v control(%q) = %v, want ok=%v", tt.policy, tt.address, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("control(%q) = %v, not ErrForbiddenAddress", tt.address, err)
		}
	}
}

func TestIsPublic(t *testing.T) {
	tests := []struct {
		addr   string
		public bool
	}{
		// Public.
		{"93.184.216.34", true},
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"100.63.255.255", true}, // just below CGNAT
		{"100.128.0.0", true},    // just above CGNAT
		{"172.15.255.255", true}, // just below 172.16/12
		{"172.32.0.0", true},     // just above 172.16/12
		{"198.17.255.255", true}, // just below benchmarking
		{"198.20.0.0", true},     // just above benchmarking
		{"223.255.255.255", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"2001:4860:4860::8888", true},
		{"::ffff:93.184.216.34", true},
		{"64:ff9b::8.8.8.8", true},
		{"2002:808:808::1", true}, // 6to4 of 8.8.8.8

		// Loopback.
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"::1", false},
		// Private.
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"fc00::1", false},
		{"fd12:3456:789a::1", false},
		// Link-local, including cloud metadata.
		{"169.254.169.254", false},
		{"169.254.0.1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fd00:ec2::254", false}, // AWS metadata over IPv6
		// Unspecified and "this network".
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		// Multicast.
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"ff02::1", false},
		{"ff0e::1", false},
		// CGNAT.
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		// IETF assignments, benchmarking, reserved, broadcast.
		{"192.0.0.1", false},
		{"198.18.0.1", false},
		{"198.19.255.255", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		// IPv4-mapped IPv6 of non-public addresses.
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"::ffff:100.64.0.1", false},
		// NAT64 and 6to4 of non-public addresses.
		{"64:ff9b::127.0.0.1", false},
		{"64:ff9b::a00:1", false},
		{"64:ff9b::169.254.169.254", false},
		{"2002:a00:1::1", false},  // 6to4 of 10.0.0.1
		{"2002:7f00:1::1", false}, // 6to4 of 127.0.0.1
		// Other special IPv6 space outside 2000::/3.
		{"::127.0.0.1", false}, // IPv4-compatible (deprecated)
		{"100::1", false},      // discard-only
		{"fec0::1", false},     // site-local (deprecated)
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := isPublic(a); got != tt.public {
			t.Errorf("isPublic(%s) = %v, want %v", tt.addr, got, tt.public)
		}
	}
	if isPublic(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}
