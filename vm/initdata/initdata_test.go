package initdata

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"strings"
	"testing"
)

var sample = Document{
	Version:       Version,
	Measurement:   strings.Repeat("ab", 48),
	Profile:       "staging",
	LogRecipients: []string{"alog1example"},
	Broker:        &Broker{URL: "https://broker.example:8443", Key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
}

func TestRoundTrip(t *testing.T) {
	doc, err := sample.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	again, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, again) {
		t.Fatalf("a decoded document encodes to other bytes:\n%s\n---\n%s", doc, again)
	}
	if d.MeasurementBytes()[0] != 0xab || d.Broker.URL != sample.Broker.URL || d.LogRecipients[0] != "alog1example" {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDigests(t *testing.T) {
	doc := []byte("version = 1\n")
	if HostData(doc) != sha256.Sum256(doc) || MRConfigID(doc) != sha512.Sum384(doc) {
		t.Fatal("the digests are not SHA-256 and SHA-384 of the bytes")
	}
	other := append([]byte(nil), doc...)
	other[0] ^= 1
	if HostData(doc) == HostData(other) || MRConfigID(doc) == MRConfigID(other) {
		t.Fatal("a changed byte leaves a digest")
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := sample.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := `measurement = "` + strings.Repeat("ab", 48) + `"` + "\n"
	for name, doc := range map[string]string{
		"unknown key":       string(good) + "extra = 1\n",
		"unknown in table":  strings.Replace(string(good), "[broker]", "[broker]\nport = 1", 1),
		"version":           strings.Replace(string(good), "version = 1", "version = 2", 1),
		"no version":        m + "profile = 'debug'\n",
		"short measurement": "version = 1\nmeasurement = 'abcd'\nprofile = 'debug'\n",
		"upper hex":         "version = 1\n" + strings.ToUpper(m) + "profile = 'debug'\n",
		"profile":           "version = 1\n" + m + "profile = 'fast'\n",
		"no profile":        "version = 1\n" + m,
		"twice":             "version = 1\nversion = 1\n" + m + "profile = 'debug'\n",
		"recipient twice":   "version = 1\n" + m + "profile = 'debug'\nlog_recipients = ['a', 'a']\n",
		"broker url":        "version = 1\n" + m + "profile = 'debug'\n[broker]\nurl = 'ftp://x'\nkey = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='\n",
		"broker key":        "version = 1\n" + m + "profile = 'debug'\n[broker]\nurl = 'https://x'\nkey = 'AAEC'\n",
		"not toml":          "version = = 1",
		"too large":         strings.Repeat("#", MaxSize+1),
	} {
		if _, err := Decode([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Decode([]byte("version = 1\n" + m + "profile = 'debug'\n")); err != nil {
		t.Errorf("a minimal document: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	good, err := sample.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("an error that is not ErrInvalid: %v", err)
			}
			return
		}
		// What decodes encodes, and that encoding decodes to itself.
		doc, err := d.Encode()
		if err != nil {
			t.Fatalf("a decoded document does not encode: %v", err)
		}
		d2, err := Decode(doc)
		if err != nil {
			t.Fatalf("an encoding does not decode: %v\n%s", err, doc)
		}
		doc2, _ := d2.Encode()
		if !bytes.Equal(doc, doc2) {
			t.Fatalf("encoding is not stable:\n%s\n---\n%s", doc, doc2)
		}
	})
}
