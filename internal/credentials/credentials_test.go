package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseSecrets(t *testing.T) {
	got, err := ParseSecrets("\n whsec_a \n\nwhsec_b\n")
	if err != nil || len(got) != 2 || string(got[0]) != "whsec_a" || string(got[1]) != "whsec_b" {
		t.Fatalf("ParseSecrets = %q, %v", got, err)
	}
	if _, err := ParseSecrets("whsec_a\nsk_test_oops"); err == nil || strings.Contains(err.Error(), "sk_test_oops") {
		t.Fatalf("want an error naming the key but not the value, got %v", err)
	}
}

func TestStoreRedactsAndNotifies(t *testing.T) {
	s := &Store{}
	ch := s.Subscribe()
	if err := s.Set("sk_test_secretvalue", [][]byte{[]byte("whsec_secretvalue")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("no change notification")
	}
	b, _ := json.Marshal(s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v", s, s, s), string(b)} {
		if strings.Contains(out, "secretvalue") {
			t.Fatalf("secret printed: %s", out)
		}
	}
	// A refused key (for example live without --allow-live-mode) is not
	// stored.
	s.OnAPIKey = func(string) error { return errors.New("live mode refused") }
	if err := s.Set("sk_live_x", nil); err == nil || s.APIKey() != "sk_test_secretvalue" {
		t.Fatalf("refused key was stored: %v", err)
	}
}
