package webhookserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rejection reasons, used in responses, logs and metrics.
const (
	ReasonMissingHeader     = "missing_header"
	ReasonMalformedHeader   = "malformed_header"
	ReasonNoValidSignature  = "no_valid_signature"
	ReasonTimestampTooOld   = "timestamp_too_old"
	ReasonTimestampInFuture = "timestamp_in_future"
	ReasonNoSecrets         = "no_secrets_configured"
)

// signatureHeader is a parsed Stripe-Signature header.
type signatureHeader struct {
	timestamp int64
	n         int // signatures in v1
	v1        [maxSignatures][sha256.Size]byte
}

// signatures are the header's well-formed v1 signatures.
func (h *signatureHeader) signatures() [][sha256.Size]byte { return h.v1[:h.n] }

var errMalformed = errors.New(ReasonMalformedHeader)

// maxSignatures bounds the work one header can cause.
const maxSignatures = 16

// parseSignatureHeader parses "t=<unix>,v1=<hex>,v1=<hex>,v0=...". Unknown
// schemes are ignored; a missing or repeated t, or no v1, is malformed. It
// allocates nothing.
func parseSignatureHeader(h string, out *signatureHeader) error {
	*out = signatureHeader{}
	haveT := false
	for rest, more := h, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errMalformed
		}
		switch k {
		case "t":
			if haveT {
				return errMalformed
			}
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts <= 0 {
				return errMalformed
			}
			out.timestamp, haveT = ts, true
		case "v1":
			// A bad v1 cannot match; others may.
			if out.n < maxSignatures && decodeHex(out.v1[out.n][:], v) {
				out.n++
			}
		}
	}
	if !haveT || out.n == 0 {
		return errMalformed
	}
	return nil
}

// decodeHex decodes s, in either case, into dst if it is exactly
// hex.EncodedLen(len(dst)) hex digits (hex.DecodeString would allocate).
func decodeHex(dst []byte, s string) bool {
	if len(s) != hex.EncodedLen(len(dst)) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHexChar(s[2*i])
		lo, ok2 := fromHexChar(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// verify checks header against payload and secrets. It returns "" when the
// payload is authentic, else a rejection reason.
func verify(payload []byte, header string, secrets [][]byte, now time.Time, tolerance time.Duration) string {
	if header == "" {
		return ReasonMissingHeader
	}
	var h signatureHeader
	if err := parseSignatureHeader(header, &h); err != nil {
		return ReasonMalformedHeader
	}
	if len(secrets) == 0 {
		return ReasonNoSecrets
	}
	signedAt := time.Unix(h.timestamp, 0)
	// Check the signature before the clock so a forged header learns nothing
	// about the tolerance; both must pass.
	matched := false
	var prefix [24]byte
	signed := append(strconv.AppendInt(prefix[:0], h.timestamp, 10), '.')
	var sum [sha256.Size]byte
	for _, secret := range secrets {
		pool := keyedMACs.pool(secret)
		mac := pool.Get().(hash.Hash)
		mac.Write(signed)
		mac.Write(payload)
		expected := mac.Sum(sum[:0])
		mac.Reset() // back to the keyed state
		pool.Put(mac)
		for _, sig := range h.signatures() {
			if hmac.Equal(expected, sig[:]) {
				matched = true
			}
		}
	}
	if !matched {
		return ReasonNoValidSignature
	}
	switch {
	case now.Sub(signedAt) > tolerance:
		return ReasonTimestampTooOld
	case signedAt.Sub(now) > tolerance:
		return ReasonTimestampInFuture
	}
	return ""
}

// keyedMACs reuses HMAC-SHA256 states keyed with each signing secret:
// keying one costs two SHA-256 blocks and several allocations, and
// hmac's Reset returns it to the keyed state. Secrets change rarely (a
// rotation adds one); the cache is dropped whole past maxKeyedSecrets so
// that retired secrets do not pile up.
var keyedMACs macCache

const maxKeyedSecrets = 16

type macCache struct {
	mu    sync.Mutex
	pools map[string]*sync.Pool
}

// pool returns the pool of states keyed with secret.
func (c *macCache) pool(secret []byte) *sync.Pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pools[string(secret)]; ok {
		return p
	}
	if c.pools == nil || len(c.pools) >= maxKeyedSecrets {
		c.pools = map[string]*sync.Pool{}
	}
	key := append([]byte(nil), secret...)
	p := &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	c.pools[string(key)] = p
	return p
}
