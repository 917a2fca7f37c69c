package webhookserver

import (
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/stripe/stripefake"
)

func BenchmarkZZDecodeOnly(b *testing.B) {
	p := realisticEvent()
	for b.Loop() {
		_, _ = decodeEvent(p)
	}
}
func BenchmarkZZVerifyOnly(b *testing.B) {
	p := realisticEvent()
	now := time.Now()
	h := stripefake.Sign(p, secretA, now)
	for b.Loop() {
		verify(p, h, [][]byte{[]byte(secretA)}, now, time.Minute)
	}
}
