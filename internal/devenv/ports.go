package devenv

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// checkPorts tries every listen address of the environment and names the
// flag of the first that is taken.
func checkPorts(o Options) error {
	var errs []error
	seen := map[string]string{}
	for _, p := range []struct{ flag, addr string }{
		{"--stripe-addr", o.StripeAddr},
		{"--webhook-addr", o.WebhookAddr},
		{"--admin-addr", o.AdminAddr},
		{"--metrics-addr", o.MetricsAddr},
	} {
		if p.addr == "" || p.addr == "0" {
			continue
		}
		if other, dup := seen[p.addr]; dup {
			errs = append(errs, fmt.Errorf("%s and %s both use %s; give each its own port", other, p.flag, p.addr))
			continue
		}
		seen[p.addr] = p.flag
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s cannot be used (%w); choose another port, for example make dev DEV_ARGS=\"%s=%s\"", p.flag, p.addr, err, p.flag, suggest(p.addr)))
			continue
		}
		_ = l.Close()
	}
	return errors.Join(errs...)
}

// dialable turns a listen address into one to print in a URL: an empty or
// unspecified host becomes 127.0.0.1.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func orOff(url string) string {
	if url == "" {
		return "off (--metrics-addr=0)"
	}
	return url
}

// suggest proposes another address on the same host, 10000 ports up.
func suggest(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1:18090"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n+10000 > 65535 {
		n = 8090
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(n+10000))
}
