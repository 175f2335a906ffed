package kbs

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// keyWrapIV is RFC 3394's default initial value.
var keyWrapIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// ErrKeyWrap: a key cannot be wrapped, or a wrapped key does not unwrap
// (wrong key, or altered).
var ErrKeyWrap = errors.New("aes key wrap")

// WrapKey wraps key (16 bytes or more, a multiple of 8) under kek (an
// AES key of 16, 24 or 32 bytes) as RFC 3394 §2.2.1 does, with the
// default initial value: 8 bytes longer than key.
func WrapKey(kek, key []byte) ([]byte, error) {
	if len(key) < 16 || len(key)%8 != 0 {
		return nil, errors.Join(ErrKeyWrap, errors.New("the key to wrap is not a multiple of 8 bytes, 16 or more"))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errors.Join(ErrKeyWrap, err)
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out[8:], key)
	a := keyWrapIV
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], out[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(b[:8])^t)
			copy(out[8*i:8*i+8], b[8:])
		}
	}
	copy(out[:8], a[:])
	return out, nil
}

// UnwrapKey reverses WrapKey (RFC 3394 §2.2.2), checking the initial
// value: a wrapped key altered, or unwrapped under another kek, is
// ErrKeyWrap.
func UnwrapKey(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 24 || len(wrapped)%8 != 0 {
		return nil, errors.Join(ErrKeyWrap, errors.New("a wrapped key is a multiple of 8 bytes, 24 or more"))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errors.Join(ErrKeyWrap, err)
	}
	n := len(wrapped)/8 - 1
	out := make([]byte, len(wrapped)-8)
	copy(out, wrapped[8:])
	var a [8]byte
	copy(a[:], wrapped[:8])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], out[8*(i-1):8*i])
			block.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(out[8*(i-1):8*i], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(a[:], keyWrapIV[:]) != 1 {
		clear(out)
		return nil, errors.Join(ErrKeyWrap, errors.New("the wrapped key does not unwrap under this key"))
	}
	return out, nil
}
