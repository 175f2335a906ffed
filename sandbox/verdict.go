package sandbox

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A module's inspection is kept beside its compiled code, so that a run
// whose code comes from the cache need not read every instruction again
// (about 5 ms for a 2.6 MiB Go guest, a tenth of a warm start). A verdict
// is what inspect found of a module that passed it, under a name bound to
// the module's bytes and to this launcher's executable (another build may
// inspect by other rules); the memory limit is judged afresh each run. It
// lives in the cache's own directory, which is as trusted as the code
// wazero runs from it: under debug the developer's, under staging and
// production the memory tier only the trust boundary can change.

// verdictName is the verdict's file name for the module whose SHA-384 is
// digest, inspected by the launch executable launcher identifies
// (launcherID; "" is this process's own); "" when it cannot be
// identified.
func verdictName(digest [48]byte, launcher string) string {
	if launcher == "" {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/exe", &st); err != nil {
			return ""
		}
		launcher = launcherID(&st)
	}
	h := sha256.New()
	h.Write([]byte("ampoule/inspected/v2"))
	h.Write(digest[:])
	h.Write([]byte(launcher))
	return "inspected-" + hex.EncodeToString(h.Sum(nil))
}

// launcherID identifies the executable whose file st describes: its
// device, inode, size and modification time, which another build has
// not.
func launcherID(st *unix.Stat_t) string {
	var b []byte
	for _, v := range []uint64{st.Dev, st.Ino, uint64(st.Size), uint64(st.Mtim.Sec), uint64(st.Mtim.Nsec)} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return string(b)
}

// checkModuleCached is checkModule, taking the module's shape from a
// verdict in dir when one is there and recording it when it was not.
// digest, if set, returns the module's SHA-384 (see Spec.ModuleDigest).
func checkModuleCached(module []byte, digest func() [48]byte, memLimit uint64, dir, launcher string) error {
	name := ""
	if dir != "" {
		var sum [48]byte
		if digest != nil {
			sum = digest()
		} else {
			sum = sha512.Sum384(module)
		}
		name = verdictName(sum, launcher)
	}
	if name == "" {
		return checkModule(module, memLimit)
	}
	path := filepath.Join(dir, name)
	if data, err := os.ReadFile(path); err == nil {
		var s moduleShape
		if json.Unmarshal(data, &s) == nil {
			return checkShape(&s, memLimit)
		}
	}
	s, err := inspected(module)
	if err != nil {
		return err
	}
	if data, err := json.Marshal(s); err == nil {
		if os.MkdirAll(dir, 0o700) == nil {
			writeFileAtomic(path, data)
		}
	}
	return checkShape(s, memLimit)
}

// writeFileAtomic writes path through a temporary file and a rename, so a
// reader sees all of it or nothing; a failure leaves nothing behind.
func writeFileAtomic(path string, data []byte) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
}
