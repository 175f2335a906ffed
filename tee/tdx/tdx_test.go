package tdx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
)

// The quote is real captured evidence that go-tdx-guest ships in its module;
// its certificates are judged at a time they were valid.
var at = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

func TestRealQuoteVerifies(t *testing.T) {
	c, err := Verify(testdata.RawQuote, at)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 4 || c.MRTD == ([48]byte{}) {
		t.Errorf("claims %+v", c)
	}
}

func TestQuoteTampersAreRefused(t *testing.T) {
	for name, mutate := range map[string]func([]byte) []byte{
		"header version": func(b []byte) []byte { b[0] = 3; return b },
		"mrtd":           func(b []byte) []byte { b[48+136] ^= 1; return b },
		"report data":    func(b []byte) []byte { b[48+520] ^= 1; return b },
		"signature":      func(b []byte) []byte { b[48+584+4+10] ^= 1; return b },
		"truncated":      func(b []byte) []byte { return b[:600] },
	} {
		raw := mutate(append([]byte(nil), testdata.RawQuote...))
		if _, err := Verify(raw, at); !errors.Is(err, ErrQuote) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	if _, err := Verify(testdata.RawQuote, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrQuote) {
		t.Error("a quote judged after its certificates expired was accepted")
	}
}

func BenchmarkVerify(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Verify(testdata.RawQuote, at); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRootMustBeIntels: a PCK chain ending in any other root is refused
// before the library is asked.
func TestRootMustBeIntels(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Intel SGX Root CA"},
		NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	forged := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	q := &pb.QuoteV4{SignedData: &pb.Ecdsa256BitQuoteV4AuthData{CertificationData: &pb.CertificationData{
		QeReportCertificationData: &pb.QEReportCertificationData{PckCertificateChainData: &pb.PCKCertificateChainData{PckCertChain: forged}}}}}
	if _, err := intelRoot(q); !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "not Intel's") {
		t.Errorf("a forged root: %v", err)
	}
	if _, err := intelRoot(&pb.QuoteV4{}); !errors.Is(err, ErrQuote) {
		t.Errorf("no chain: %v", err)
	}
}
