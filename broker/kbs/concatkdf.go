package kbs

import (
	"crypto/sha256"
	"encoding/binary"
)

// ConcatKDF derives keyLen bytes from the shared secret z as RFC 7518
// §4.6.2 specifies for ECDH-ES (NIST SP 800-56A's Concat KDF with
// SHA-256): AlgorithmID is alg ("ECDH-ES+A256KW" for key wrapping, the
// "enc" value for direct agreement), PartyUInfo and PartyVInfo are apu
// and apv (Trustee sends neither: both empty), each with a 32-bit
// big-endian length before it, and SuppPubInfo the key length in bits.
func ConcatKDF(z []byte, alg string, apu, apv []byte, keyLen int) []byte {
	var other []byte
	for _, f := range [][]byte{[]byte(alg), apu, apv} {
		other = binary.BigEndian.AppendUint32(other, uint32(len(f)))
		other = append(other, f...)
	}
	other = binary.BigEndian.AppendUint32(other, uint32(keyLen*8))
	out := make([]byte, 0, keyLen+sha256.Size)
	for counter := uint32(1); len(out) < keyLen; counter++ {
		h := sha256.New()
		h.Write(binary.BigEndian.AppendUint32(nil, counter))
		h.Write(z)
		h.Write(other)
		out = h.Sum(out)
	}
	return out[:keyLen]
}
