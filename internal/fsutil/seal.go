package fsutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// sealMark starts the checksum line Seal appends.
const sealMark = "\n#sha256:"

// ErrDamaged is returned by Unseal for data whose checksum does not match.
var ErrDamaged = errors.New("checksum mismatch: the file is damaged")

// Seal returns data (small metadata, e.g. JSON) followed by a line with
// its sha256, so that Unseal can tell a damaged file from a good one: a
// flipped digit in a JSON record still parses, and would silently point
// somewhere else.
func Seal(data []byte) []byte {
	sum := sha256.Sum256(data)
	out := make([]byte, 0, len(data)+len(sealMark)+65)
	out = append(out, data...)
	out = append(out, sealMark...)
	out = append(out, hex.EncodeToString(sum[:])...)
	return append(out, '\n')
}

// Unseal returns the data Seal sealed, or ErrDamaged. Data without a
// recognisable seal (written before seals existed, or with the seal line
// itself damaged) is returned as it is: JSON with a damaged seal line no
// longer parses.
func Unseal(b []byte) ([]byte, error) {
	i := bytes.LastIndex(b, []byte(sealMark))
	if i < 0 {
		return b, nil
	}
	data, rest := b[:i], bytes.TrimSuffix(b[i+len(sealMark):], []byte("\n"))
	sum := sha256.Sum256(data)
	if string(rest) != hex.EncodeToString(sum[:]) {
		return nil, ErrDamaged
	}
	return data, nil
}
