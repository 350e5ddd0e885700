package imagestore

import (
	"time"

	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// HistoryEntry is one entry of an image's history, with the size its
// layer adds (unpacked; 0 for an entry without a layer).
type HistoryEntry struct {
	Created   time.Time
	CreatedBy string
	Comment   string
	Size      int64
}

// History returns the image ref names and its history, newest first, as
// docker image history lists it. Of a multi-platform image it is the
// history of the image for platform p (unset: the host's, as docker's
// containerd store picks it); the ID is the multi-platform image's.
func (s *Store) History(ref string, p llb.Platform) (digest.Digest, []HistoryEntry, error) {
	top, err := s.Get(ref)
	if err != nil {
		return "", nil, err
	}
	im, err := Select(top, p)
	if err != nil {
		return "", nil, err
	}
	img, err := s.Load(im)
	if err != nil {
		return "", nil, err
	}
	layers, err := s.Layers(im)
	if err != nil {
		return "", nil, err
	}
	hist := img.Config.History
	out := make([]HistoryEntry, 0, len(hist))
	li := 0
	for _, h := range hist {
		var size int64
		if !h.EmptyLayer && li < len(layers) {
			size = layers[li].Unpacked
			li++
		}
		out = append(out, HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, Size: size})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return top.ID, out, nil
}
