package ampoule_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
)

// TestVerifyEARVerdict: a valid token is judged by its verdict: affirming
// passes; any other comes back with its claims (to be shown) and an
// evidence-refused error naming the verdict and its reasons.
func TestVerifyEARVerdict(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, err := kbs.ECDSAJWK(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	data, _ := json.Marshal(kbs.JWKS{Keys: []kbs.JWK{pub}})
	if err := os.WriteFile(jwks, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tee, _ := ecdh.P256().GenerateKey(rand.Reader)
	teeKey, _ := kbs.JWKFromECDH(tee.PublicKey())
	now := time.Now().Truncate(time.Second)
	for verdict, want := range map[string]errcode.Code{"affirming": 0, "contraindicated": errcode.EvidenceRefused, "warning": errcode.EvidenceRefused} {
		c := kbs.Claims{Verdict: verdict, Measurement: strings.Repeat("ab", 48), Profile: "staging", Backend: "sim", Class: "insecure",
			Reasons: []string{"the reason"}, TeePubKey: teeKey, IssuedAt: now, Expires: now.Add(kbs.EARLifetime), Issuer: "http://broker"}
		tok, err := kbs.IssueEAR(key, pub.Kid, c, "test")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ampoule.VerifyEAR(context.Background(), tok, jwks, now)
		if got == nil || got.Verdict != verdict {
			t.Errorf("%s: claims %+v", verdict, got)
		}
		if want == 0 {
			if err != nil {
				t.Errorf("%s: %v", verdict, err)
			}
			continue
		}
		if errcode.From(err).Code != want || !strings.Contains(err.Error(), "verdict is "+verdict+": the reason") {
			t.Errorf("%s: %v, want %v", verdict, err, want)
		}
	}
}
