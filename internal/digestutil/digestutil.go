package digestutil

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// FromHash returns h as a digest.Digest. It does not validate: a hash from
// go-containerregistry's parsers is valid, and callers that take one from
// elsewhere validate the digest where they use it.
func FromHash(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }

// ToHash returns d as a v1.Hash; an error when d is not algorithm:hex of a
// known algorithm.
func ToHash(d digest.Digest) (v1.Hash, error) {
	h, err := v1.NewHash(d.String())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest %q: %w", d, err)
	}
	return h, nil
}

// HashOf returns d as a v1.Hash without validating it: for a digest this
// process computed (digest.FromBytes, a verified blob), which is valid.
func HashOf(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}
