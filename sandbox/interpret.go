package sandbox

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
)

// A run with InterpretFirst interprets a module only where its cache has
// no code for it. wazero's own cache cannot be asked without decoding and
// validating the module (the cost an interpreted first run avoids), so a
// run that compiled a module into a cache leaves a mark beside the code,
// named by the module's bytes and by the wazero that compiled it: another
// wazero keys its code otherwise, and finds no mark of its own.

// wazeroVersion is the version of the wazero this binary links.
var wazeroVersion = sync.OnceValue(func() string { return Versions().Wazero })

// compiledMark is the mark's file name for the module whose SHA-384 is
// digest.
func compiledMark(digest [48]byte) string {
	h := sha256.New()
	h.Write([]byte("ampoule/compiled/v1\x00"))
	h.Write(digest[:])
	h.Write([]byte(wazeroVersion()))
	return "compiled-" + hex.EncodeToString(h.Sum(nil))
}

// moduleDigest is spec's module's SHA-384: the caller's, if it has one.
func moduleDigest(spec *Spec) [48]byte {
	if spec.ModuleDigest != nil {
		return spec.ModuleDigest()
	}
	return sha512.Sum384(spec.Module)
}

// hasCompiled says whether a run has compiled the module into dir.
func hasCompiled(dir string, digest [48]byte) bool {
	_, err := os.Lstat(filepath.Join(dir, compiledMark(digest)))
	return err == nil
}

// MarkCompiled records that the code of the module whose SHA-384 is digest
// is in the cache directory dir, for a caller that put it there (the
// authenticated cache, importing a verified entry), so that a run with
// InterpretFirst compiles from it. A mark that cannot be written costs a
// run an interpreted start, nothing else; one planted makes it compile.
func MarkCompiled(dir string, digest [48]byte) { markCompiled(dir, digest) }

// markCompiled records that the module is compiled into dir.
func markCompiled(dir string, digest [48]byte) {
	if !hasCompiled(dir, digest) {
		writeFileAtomic(filepath.Join(dir, compiledMark(digest)), nil)
	}
}
