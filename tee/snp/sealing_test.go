package snp_test

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/ampoule-run/ampoule/tee/snp"
)

// firmware models the AMD secure processor's MSG_KEY_REQ as the SEV-SNP
// firmware ABI describes it, independently of the code under test: the key
// is derived from a root (the VCEK's, or the VM root key with
// ROOT_KEY_SELECT 1) and every field GUEST_FIELD_SELECT names, taken from
// the VM's own launch state (guest policy, bit 0; image id, 1; family id,
// 2; launch measurement, 3; guest SVN, 4; TCB version, 5). A request that
// leaves a field out gets a key that does not depend on it.
type firmware struct {
	vcekRoot, vmRoot []byte
	policy           uint64
	measurement      [48]byte
	imageID          [16]byte
	// last is the request the model last answered.
	last labi.SnpDerivedKeyReqABI
}

func (f *firmware) Open(string) error        { return nil }
func (f *firmware) Close() error             { return nil }
func (f *firmware) Product() *spb.SevProduct { return abi.DefaultSevProduct() }
func (f *firmware) Ioctl(cmd uintptr, arg any) (uintptr, error) {
	req, ok := arg.(*labi.SnpUserGuestRequest)
	if !ok || cmd != labi.IocSnpGetDerivedKey {
		return 0, fmt.Errorf("the model answers MSG_KEY_REQ only, not %#x", cmd)
	}
	kr, resp := req.ReqData.(*labi.SnpDerivedKeyReqABI), req.RespData.(*labi.SnpDerivedKeyRespABI)
	f.last = *kr
	root := f.vcekRoot
	if kr.RootKeySelect&1 == 1 {
		root = f.vmRoot
	}
	mac := hmac.New(sha256.New, root)
	binary.Write(mac, binary.LittleEndian, []any{kr.GuestFieldSelect, kr.Vmpl, kr.GuestSVN, kr.TCBVersion})
	if kr.GuestFieldSelect&(1<<0) != 0 {
		binary.Write(mac, binary.LittleEndian, f.policy)
	}
	if kr.GuestFieldSelect&(1<<1) != 0 {
		mac.Write(f.imageID[:])
	}
	if kr.GuestFieldSelect&(1<<3) != 0 {
		mac.Write(f.measurement[:])
	}
	copy(resp.Data[:], mac.Sum(nil))
	return 0, nil
}

// TestSealingKeyMixesLaunchState: the sealing key changes with the VM's
// launch measurement and with its guest policy (so a debug VM, or another
// image, on the same chip cannot open a production VM's store), and with
// the chip; it is the documented derivation over the firmware's answer.
func TestSealingKeyMixesLaunchState(t *testing.T) {
	base := firmware{vcekRoot: []byte("chip A's VCEK"), vmRoot: []byte("VM root key"), policy: 0x30000, measurement: [48]byte{1}}
	key := func(f firmware, bundle [48]byte) []byte {
		t.Helper()
		k, err := snp.NewBackend(&f).SealingKey(context.Background(), bundle)
		if err != nil {
			t.Fatal(err)
		}
		if f.last.RootKeySelect != 0 {
			t.Errorf("the request selects root key %d, not the VCEK's (0)", f.last.RootKeySelect)
		}
		return k
	}
	bundle := [48]byte{0xb}
	k := key(base, bundle)
	// The derivation, written out: HKDF-SHA256 over the firmware's key,
	// salted with the bundle's measurement.
	f, resp := base, &labi.SnpDerivedKeyRespABI{}
	if _, err := f.Ioctl(labi.IocSnpGetDerivedKey, &labi.SnpUserGuestRequest{ReqData: &labi.SnpDerivedKeyReqABI{GuestFieldSelect: 1<<0 | 1<<3}, RespData: resp}); err != nil {
		t.Fatal(err)
	}
	want, err := hkdf.Key(sha256.New, resp.Data[:], bundle[:], "ampoule/snp/sealing/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	if string(k) != string(want) {
		t.Errorf("the sealing key is not HKDF(firmware key over policy and measurement, bundle)")
	}
	for name, change := range map[string]func(*firmware){
		"launch measurement": func(f *firmware) { f.measurement[47] ^= 1 },
		"guest policy":       func(f *firmware) { f.policy |= 1 << 19 },
		"chip":               func(f *firmware) { f.vcekRoot = []byte("chip B's VCEK") },
	} {
		other := base
		change(&other)
		if string(key(other, bundle)) == string(k) {
			t.Errorf("two VMs differing only in %s get the same sealing key", name)
		}
	}
	if string(key(base, [48]byte{0xc})) == string(k) {
		t.Error("two bundles get the same sealing key")
	}
}
