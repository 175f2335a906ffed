package measure

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ulikunitz/xz/lzma"
)

// The boot whose TCG event log is testdata/tpm_eventlog_debian12.bin
// (testdata/README.md has the recipe): QEMU 7.2 q35 with 1024 MiB, Debian
// 12's OVMF.fd and a software TPM with a SHA-384 bank, booting Debian 12's
// kernel directly with this command line and tpm_eventlog_initrd.cpio.
const (
	tpmLogCmdline      = "console=ttyS0 loglevel=1 panic=-1 no_timer_check rdinit=/init"
	tpmLogMemory       = 1024 << 20
	tpmLogKernel       = "/boot/vmlinuz-6.1.0-57-amd64"
	tpmLogKernelSHA256 = "85667e6c72245133bd7e3e80bac7d16b26fda15c0a3c68faa4b713850ea526cd"
	debianOVMF         = "/usr/share/ovmf/OVMF.fd"
	debianOVMFSHA256   = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773"
)

// rtmrEventsOfTPMLog are the events of a TPM boot's log that TdTcg2Dxe
// extends into RTMR1 and RTMR2 (PCR 2 to 6, and 8 to 15), less the
// separators of PCR 2, 3, 5 and 6, which TDX's firmware extends once for
// RTMR1 where a TPM's extends one per PCR.
func rtmrEventsOfTPMLog(events []TCGEvent) []TCGEvent {
	var out []TCGEvent
	for _, e := range events {
		switch {
		case e.Type == EVSeparator && e.PCR != 4:
		case e.PCR >= 2 && e.PCR <= 6, e.PCR >= 8 && e.PCR <= 15:
			out = append(out, e)
		}
	}
	return out
}

// TestRTMREventsAgainstTPMLog checks each RTMR1 and RTMR2 event Events
// computes against a real boot's event log: the same QEMU, OVMF and
// kernel measured into a software TPM's PCRs what TDX's firmware
// measures into RTMR1 (PCR 4, 5) and RTMR2 (PCR 9). Each event is
// matched by its type, register and data as well as its SHA-384, and the
// kernel's by its SHA-256 too (the log's other bank).
func TestRTMREventsAgainstTPMLog(t *testing.T) {
	raw, err := os.ReadFile("testdata/tpm_eventlog_debian12.bin")
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile("testdata/tpm_eventlog_initrd.cpio")
	if err != nil {
		t.Fatal(err)
	}
	log, err := ParseTCGEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 24 {
		t.Fatalf("the log has %d events, want the 24 it was captured with", len(log))
	}
	kernel, err := os.ReadFile(tpmLogKernel)
	haveKernel := err == nil && hex.EncodeToString(sha256Sum(kernel)) == tpmLogKernelSHA256
	if !haveKernel {
		// The kernel's digest needs the very kernel booted; the other
		// events are checked whatever kernel is installed.
		kernel = syntheticPE(t)
	}
	boot := TDXBoot{Kernel: kernel, Initrd: initrd, Cmdline: tpmLogCmdline, MemoryBytes: tpmLogMemory}
	ours, err := boot.Events()
	if err != nil {
		t.Fatal(err)
	}
	theirs := rtmrEventsOfTPMLog(log)
	if len(theirs) != len(ours) {
		t.Fatalf("the log has %d events for RTMR1 and RTMR2, Events %d", len(theirs), len(ours))
	}
	want := []struct {
		pcr, typ uint32
		data     string
	}{
		{4, EVEFIBootServicesApp, ""},
		{4, EVEFIAction, actionCallingApplication},
		{4, EVSeparator, "\x00\x00\x00\x00"},
		{9, EVEventTag, "\xed\x22\x3b\x8f\x1a\x00\x00\x00LOADED_IMAGE::LoadOptions\x00"},
		{9, EVEventTag, "\xec\x22\x3b\x8f\x0d\x00\x00\x00Linux initrd\x00"},
		{5, EVEFIAction, actionExitBootServices},
		{5, EVEFIAction, actionExitBootSucceeded},
	}
	for i, e := range theirs {
		w, o := want[i], ours[i]
		if e.PCR != w.pcr || e.Type != w.typ || w.data != "" && string(e.Data) != w.data {
			t.Errorf("log event %d is PCR %d type %#x data %q, want PCR %d type %#x %q", i, e.PCR, e.Type, e.Data, w.pcr, w.typ, w.data)
		}
		if wantRTMR := map[uint32]int{4: 1, 5: 1, 9: 2}[e.PCR]; o.RTMR != wantRTMR {
			t.Errorf("%s: RTMR%d, want RTMR%d for PCR %d", o.Name, o.RTMR, wantRTMR, e.PCR)
		}
		if i == 0 && !haveKernel {
			t.Logf("the kernel's event is not checked: %s is not the kernel booted (SHA-256 %s)", tpmLogKernel, tpmLogKernelSHA256)
			continue
		}
		if !bytes.Equal(e.Digests[AlgSHA384], o.Digest[:]) {
			t.Errorf("%s: digest %x, the log's %x", o.Name, o.Digest, e.Digests[AlgSHA384])
		}
	}
	if haveKernel {
		patched, err := QEMUPatchKernel(kernel, len(initrd), tpmLogMemory)
		if err != nil {
			t.Fatal(err)
		}
		d, err := authenticode(sha256.New(), patched)
		if err != nil || !bytes.Equal(d, theirs[0].Digests[AlgSHA256]) {
			t.Errorf("the patched kernel's Authenticode SHA-256 %x (%v), the log's %x", d, err, theirs[0].Digests[AlgSHA256])
		}
		// Unpatched, the kernel's digest is another: QEMU's header
		// writes are measured.
		if d, _ := AuthenticodeSHA384(kernel); bytes.Equal(d[:], ours[0].Digest[:]) {
			t.Error("the kernel's digest does not depend on QEMU's patch")
		}
	}
	// The replay extends each register's events in order from zero.
	r1 := ReplayRTMR(ours, 1)
	var chain [48]byte
	for _, e := range []RTMREvent{ours[0], ours[1], ours[2], ours[5], ours[6]} {
		chain = sha512.Sum384(append(chain[:], e.Digest[:]...))
	}
	if r1 != chain || ReplayRTMR(ours, 0) != [48]byte{} || ReplayRTMR(ours, 2) == [48]byte{} {
		t.Errorf("replay: RTMR1 %x, want %x; RTMR0 %x", r1, chain, ReplayRTMR(ours, 0))
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// TestLoadOptionsDigest: the command line is measured as OVMF hands it
// over, so each of its parts (the initrd's suffix, the NUL, UTF-16)
// changes the digest.
func TestLoadOptionsDigest(t *testing.T) {
	with, without := LoadOptionsDigest(tpmLogCmdline, true), LoadOptionsDigest(tpmLogCmdline, false)
	if with == without || with != LoadOptionsDigest(tpmLogCmdline+" initrd=initrd", false) {
		t.Error("the initrd's suffix is not what changes the digest")
	}
	u := []byte{}
	for _, c := range "ab\x00" {
		u = append(u, byte(c), 0)
	}
	if LoadOptionsDigest("ab", false) != sha512.Sum384(u) {
		t.Error("LoadOptions are not UTF-16LE with a NUL")
	}
}

// syntheticPE is a minimal PE32+ image: DOS header, PE header, an
// optional header with 16 data directories, two sections and a
// certificate table at its end.
func syntheticPE(t testing.TB) []byte {
	t.Helper()
	le := binary.LittleEndian
	pe := make([]byte, 0x1000)
	for i := range pe {
		pe[i] = byte(i * 7)
	}
	pe[0], pe[1] = 'M', 'Z'
	le.PutUint32(pe[0x3c:], 0x40)
	copy(pe[0x40:], "PE\x00\x00")
	le.PutUint16(pe[0x46:], 2)   // sections
	le.PutUint16(pe[0x54:], 240) // optional header size
	opt := 0x58
	le.PutUint16(pe[opt:], peOptionalPE32P)
	le.PutUint32(pe[opt+60:], 0x200) // SizeOfHeaders
	le.PutUint32(pe[opt+108:], 16)   // NumberOfRvaAndSizes
	le.PutUint32(pe[opt+112+32:], 0xf00)
	le.PutUint32(pe[opt+112+36:], 0x100) // certificate table: the last 256 bytes
	sec := opt + 240
	// Sections out of file order: the second comes first.
	le.PutUint32(pe[sec+16:], 0x400)
	le.PutUint32(pe[sec+20:], 0x800)
	le.PutUint32(pe[sec+40+16:], 0x600)
	le.PutUint32(pe[sec+40+20:], 0x200)
	copy(pe[0x202:], "HdrS")
	le.PutUint16(pe[0x206:], 0x20f)
	pe[0x211] = loadedHigh
	le.PutUint16(pe[0x236:], xlfCanBeAbove4G)
	return pe
}

// TestAuthenticode: the digest covers the headers less checksum and
// certificate entry, the sections in file order and the data after them
// less the certificate table; so changing those fields or the table does
// not change it, and changing a section's byte or the trailing data does.
func TestAuthenticode(t *testing.T) {
	pe := syntheticPE(t)
	d, err := AuthenticodeSHA384(pe)
	if err != nil {
		t.Fatal(err)
	}
	// By hand: the spans the rule names, in their order.
	opt := 0x58
	var want []byte
	want = append(want, pe[:opt+64]...)
	want = append(want, pe[opt+68:opt+112+32]...)
	want = append(want, pe[opt+112+40:0x200]...)
	want = append(want, pe[0x200:0x800]...) // the section at 0x200 first
	want = append(want, pe[0x800:0xc00]...)
	want = append(want, pe[0xc00:0xf00]...) // after the sections, before the table
	if d != sha512.Sum384(want) {
		t.Errorf("digest %x, want %x", d, sha512.Sum384(want))
	}
	for _, tc := range []struct {
		name string
		at   int
		same bool
	}{
		{"checksum", opt + 64, true}, {"certificate entry", opt + 112 + 33, true}, {"certificate table", 0xf80, true},
		{"a header byte", 0x10, false}, {"a section byte", 0x900, false}, {"trailing data", 0xe00, false},
	} {
		c := append([]byte(nil), pe...)
		c[tc.at] ^= 1
		got, err := AuthenticodeSHA384(c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (got == d) != tc.same {
			t.Errorf("flipping the %s: same digest %v, want %v", tc.name, got == d, tc.same)
		}
	}
}

// TestKernelRefusals: what cannot be measured is E1079, never a panic.
func TestKernelRefusals(t *testing.T) {
	pe := syntheticPE(t)
	le := binary.LittleEndian
	edit := func(f func(b []byte)) []byte { c := append([]byte(nil), pe...); f(c); return c }
	for _, tc := range []struct {
		name   string
		kernel []byte
		initrd int
		memory uint64
		want   string
	}{
		{"empty", nil, 0, 1 << 30, "bzImage"},
		{"no MZ", edit(func(b []byte) { b[0] = 0 }), 0, 1 << 30, "MZ"},
		{"PE header outside", edit(func(b []byte) { le.PutUint32(b[0x3c:], 0xfffffff0) }), 0, 1 << 30, "PE header"},
		{"unknown magic", edit(func(b []byte) { le.PutUint16(b[0x58:], 0x107) }), 0, 1 << 30, "magic"},
		{"headers past the end", edit(func(b []byte) { le.PutUint32(b[0x58+60:], 0x2000) }), 0, 1 << 30, "headers"},
		{"section outside", edit(func(b []byte) { le.PutUint32(b[0x58+240+20:], 0xf000) }), 0, 1 << 30, "section"},
		{"too many sections", edit(func(b []byte) { le.PutUint16(b[0x46:], 0xffff) }), 0, 1 << 30, "section headers"},
		{"certificate table too large", edit(func(b []byte) { le.PutUint32(b[0x58+112+36:], 0x10000) }), 0, 1 << 30, "certificate table"},
		{"old boot protocol", edit(func(b []byte) { le.PutUint16(b[0x206:], 0x204) }), 0, 1 << 30, "boot protocol"},
		{"initrd too large", pe, 1 << 30, 1 << 30, "do not fit"},
		{"no memory", pe, 1, 0x20000, "no room"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TDXBoot{Kernel: tc.kernel, Initrd: make([]byte, tc.initrd), MemoryBytes: tc.memory}.Events()
			var e *errcode.Error
			if !errors.As(err, &e) || e.Code != errcode.KernelInvalid || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want E1079 saying %q", err, tc.want)
			}
		})
	}
}

// TestQEMUPatchKernel: the setup header says QEMU loaded the kernel and
// places the initrd page-aligned at the top of low memory below QEMU's
// ACPI data, or below the kernel's own limit when that is lower.
func TestQEMUPatchKernel(t *testing.T) {
	le := binary.LittleEndian
	pe := syntheticPE(t)
	for _, tc := range []struct {
		name        string
		memory      uint64
		initrd      int
		xlf         uint16
		limit       uint32
		wantRamdisk uint32
	}{
		{"1 GiB", 1 << 30, 0x1800, xlfCanBeAbove4G, 0, (1<<30 - qemuACPIDataSize - 1 - 0x1800) &^ 4095},
		{"3 GiB: low memory is 2 GiB", 3 << 30, 0x1000, xlfCanBeAbove4G, 0, (0x80000000 - qemuACPIDataSize - 1 - 0x1000) &^ 4095},
		{"the kernel's limit", 1 << 30, 0x1000, 0, 0x1fffffff, (0x1fffffff - 0x1000) &^ 4095},
		{"no initrd", 1 << 30, 0, xlfCanBeAbove4G, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := append([]byte(nil), pe...)
			le.PutUint16(k[hdrXLoadFlags:], tc.xlf)
			le.PutUint32(k[hdrInitrdAddMax:], tc.limit)
			before := append([]byte(nil), k...)
			p, err := QEMUPatchKernel(k, tc.initrd, tc.memory)
			if err != nil {
				t.Fatal(err)
			}
			if p[hdrTypeOfLoader] != 0xb0 || p[hdrLoadFlags] != loadedHigh|canUseHeap || le.Uint32(p[hdrCmdLinePtr:]) != 0x20000 || le.Uint32(p[hdrHeapEndPtr:]) != 0xfe00 {
				t.Errorf("loader fields: type %#x flags %#x cmdline %#x heap %#x", p[hdrTypeOfLoader], p[hdrLoadFlags], le.Uint32(p[hdrCmdLinePtr:]), le.Uint32(p[hdrHeapEndPtr:]))
			}
			if tc.initrd == 0 {
				// Without an initrd QEMU leaves its fields as they are.
				tc.wantRamdisk = le.Uint32(k[hdrRamdiskImage:])
				tc.initrd = int(le.Uint32(k[hdrRamdiskSize:]))
			}
			if got := le.Uint32(p[hdrRamdiskImage:]); got != tc.wantRamdisk || le.Uint32(p[hdrRamdiskSize:]) != uint32(tc.initrd) {
				t.Errorf("ramdisk at %#x size %#x, want %#x size %#x", got, le.Uint32(p[hdrRamdiskSize:]), tc.wantRamdisk, tc.initrd)
			}
			if !bytes.Equal(k, before) {
				t.Error("the caller's kernel was changed")
			}
		})
	}
}

// TestKernelMeasuresIntoRTMRs: Debian 12's 6.1 kernel's stub knows only
// TCG2 (it measured into the TPM's PCR 9 above), so under TDX it
// measures nothing into RTMR2.
func TestKernelMeasuresIntoRTMRs(t *testing.T) {
	if KernelMeasuresIntoRTMRs(syntheticPE(t)) {
		t.Error("a kernel without the CC measurement GUID")
	}
	if !KernelMeasuresIntoRTMRs(append(syntheticPE(t), 0x3d, 0x1a, 0x75, 0x96)) {
		t.Error("a kernel with it")
	}
	kernel, err := os.ReadFile(tpmLogKernel)
	if err != nil || hex.EncodeToString(sha256Sum(kernel)) != tpmLogKernelSHA256 {
		t.Skipf("%s (SHA-256 %s) is not installed: %v", tpmLogKernel, tpmLogKernelSHA256, err)
	}
	if KernelMeasuresIntoRTMRs(kernel) {
		t.Error("Debian 12's 6.1 kernel is said to measure into RTMRs")
	}
}

// FuzzAuthenticode: any bytes give a digest or E1079, never a panic.
func FuzzAuthenticode(f *testing.F) {
	f.Add(syntheticPE(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := TDXBoot{Kernel: b, Initrd: b[:len(b)%64], MemoryBytes: 1 << 30}.Events()
		var e *errcode.Error
		if err != nil && (!errors.As(err, &e) || e.Code != errcode.KernelInvalid) {
			t.Fatalf("not E1079: %v", err)
		}
	})
}

// lzmaSection is an EFI_GUID_DEFINED_SECTION of edk2's LZMA GUID holding
// data compressed.
func lzmaSection(t testing.TB, data []byte) []byte {
	t.Helper()
	var c bytes.Buffer
	w, err := lzma.NewWriter(&c)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := make([]byte, 24, 24+c.Len())
	size := 24 + c.Len()
	s[0], s[1], s[2], s[3] = byte(size), byte(size>>8), byte(size>>16), 0x02
	copy(s[4:], guidLZMASection[:])
	binary.LittleEndian.PutUint16(s[20:], 24)
	return append(s, c.Bytes()...)
}

// TestTDVFMeasuresBoot: a TDVF measures a TD's boot only with TdTcg2Dxe,
// found whether its volume is compressed or not; Debian 12's OVMF.fd
// has none, so it extends no RTMR.
func TestTDVFMeasuresBoot(t *testing.T) {
	filler := bytes.Repeat([]byte("firmware volume "), 256)
	driver := append(append(slices.Clone(filler), guidTdTcg2Dxe[:]...), filler...)
	for _, tc := range []struct {
		name string
		fw   []byte
		want bool
	}{
		{"no driver", filler, false},
		{"the driver uncompressed", driver, true},
		{"the driver in an LZMA section", append(slices.Clone(filler), lzmaSection(t, driver)...), true},
		{"an LZMA section without it", append(slices.Clone(filler), lzmaSection(t, filler)...), false},
		{"a corrupt LZMA section", func() []byte { s := lzmaSection(t, driver); clear(s[30:]); return s }(), false},
		{"a section larger than the image", func() []byte { s := lzmaSection(t, driver); s[2] = 0xff; return s }(), false},
	} {
		if got := TDVFMeasuresBoot(tc.fw); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	fw, err := os.ReadFile(debianOVMF)
	if err != nil || hex.EncodeToString(sha256Sum(fw)) != debianOVMFSHA256 {
		t.Skipf("Debian 12's %s (ovmf 2022.11-6+deb12u2) is not installed: %v", debianOVMF, err)
	}
	if TDVFMeasuresBoot(fw) {
		t.Errorf("Debian 12's OVMF.fd is said to carry TdTcg2Dxe")
	}
	// Its compressed volume does hold the TPM's driver, Tcg2Dxe: the
	// search finds what is there.
	if !firmwareHolds(fw, guidLE("fdff263d-5f68-4591-87ba-b768f445a9af")) {
		t.Error("Tcg2Dxe is not found in Debian 12's OVMF.fd")
	}
}

// FuzzTDVFMeasuresBoot: any bytes give an answer, never a panic or an
// unbounded allocation.
func FuzzTDVFMeasuresBoot(f *testing.F) {
	f.Add(lzmaSection(f, []byte("volume")))
	f.Add(append([]byte("x"), guidTdTcg2Dxe[:]...))
	f.Fuzz(func(t *testing.T, b []byte) { TDVFMeasuresBoot(b) })
}

// TestParseTCGEventLogRefusals: a log cut anywhere, or with a count or
// size past its end, is E1022; trailing zeros (a firmware's free log
// area) end it.
func TestParseTCGEventLogRefusals(t *testing.T) {
	raw, err := os.ReadFile("testdata/tpm_eventlog_debian12.bin")
	if err != nil {
		t.Fatal(err)
	}
	if events, err := ParseTCGEventLog(append(slices.Clone(raw), make([]byte, 4096)...)); err != nil || len(events) != 24 {
		t.Errorf("the log and free space: %d events, %v", len(events), err)
	}
	for _, cut := range []int{0, 31, 60, 100, len(raw) - 1} {
		if _, err := ParseTCGEventLog(raw[:cut]); errcode.From(err).Code != errcode.EvidenceMalformed {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
	bad := slices.Clone(raw)
	bad[32] = 'X'
	if _, err := ParseTCGEventLog(bad); errcode.From(err).Code != errcode.EvidenceMalformed {
		t.Errorf("no Spec ID event: %v", err)
	}
	bad = slices.Clone(raw)
	binary.LittleEndian.PutUint32(bad[28:], 0xffffff00)
	if _, err := ParseTCGEventLog(bad); errcode.From(err).Code != errcode.EvidenceMalformed {
		t.Errorf("a first event past the end: %v", err)
	}
}

// FuzzParseTCGEventLog: any bytes give events or E1022, never a panic.
func FuzzParseTCGEventLog(f *testing.F) {
	raw, err := os.ReadFile("testdata/tpm_eventlog_debian12.bin")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseTCGEventLog(b); err != nil && errcode.From(err).Code != errcode.EvidenceMalformed {
			t.Fatalf("not E1022: %v", err)
		}
	})
}
