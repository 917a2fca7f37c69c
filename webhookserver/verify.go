package webhookserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
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
	v1        [][]byte
}

var errMalformed = errors.New(ReasonMalformedHeader)

// maxSignatures bounds the work one header can cause.
const maxSignatures = 16

// parseSignatureHeader parses "t=<unix>,v1=<hex>,v1=<hex>,v0=...". Unknown
// schemes are ignored; a missing or repeated t, or no v1, is malformed.
func parseSignatureHeader(h string) (signatureHeader, error) {
	var out signatureHeader
	haveT := false
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return out, errMalformed
		}
		switch k {
		case "t":
			if haveT {
				return out, errMalformed
			}
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts <= 0 {
				return out, errMalformed
			}
			out.timestamp, haveT = ts, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				continue // a bad v1 cannot match; others may
			}
			if len(out.v1) < maxSignatures {
				out.v1 = append(out.v1, sig)
			}
		}
	}
	if !haveT || len(out.v1) == 0 {
		return out, errMalformed
	}
	return out, nil
}

// verify checks header against payload and secrets. It returns "" when the
// payload is authentic, else a rejection reason.
func verify(payload []byte, header string, secrets [][]byte, now time.Time, tolerance time.Duration) string {
	if header == "" {
		return ReasonMissingHeader
	}
	h, err := parseSignatureHeader(header)
	if err != nil {
		return ReasonMalformedHeader
	}
	if len(secrets) == 0 {
		return ReasonNoSecrets
	}
	signedAt := time.Unix(h.timestamp, 0)
	// Check the signature before the clock so a forged header learns nothing
	// about the tolerance; both must pass.
	matched := false
	ts := strconv.FormatInt(h.timestamp, 10)
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(payload)
		expected := mac.Sum(nil)
		for _, sig := range h.v1 {
			if hmac.Equal(expected, sig) {
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
