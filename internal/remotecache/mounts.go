package remotecache

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver/ops"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// mountWait is how long an export waits for steps of other builds to stop
// using a cache mount before it leaves the mount out.
const mountWait = 30 * time.Second

// exportedMount is one cache mount written as a layer.
type exportedMount struct {
	id    string
	layer cache.Layer
}

// exportMounts writes the cache mounts the build used as layers, each
// while no step of any build on the root uses it. A mount still busy
// after mountWait is left out with a warning.
func exportMounts(ctx context.Context, w *ops.Worker, blobs *cache.BlobStore, opt Options) ([]exportedMount, error) {
	var out []exportedMount
	for _, id := range w.UsedCacheMounts() {
		var l *cache.Layer
		err := w.WithCacheMount(ctx, id, mountWait, func(dir string) error {
			if dir == "" {
				return nil
			}
			x, err := tarMount(ctx, dir, blobs)
			l = x
			return err
		})
		if errors.Is(err, ops.ErrCacheMountBusy) {
			opt.warn("cache mount %q not exported: %v", id, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cache mount %q: %w", id, err)
		}
		if l != nil {
			out = append(out, exportedMount{id: id, layer: *l})
		}
	}
	return out, nil
}

// tarMount writes the tree under dir as a gzip layer in blobs: entries in
// lexical order with their owners, modes and modification times (so an
// unchanged mount gives the same blob), no access or change times.
func tarMount(ctx context.Context, dir string, blobs *cache.BlobStore) (*cache.Layer, error) {
	bw, err := blobs.Writer()
	if err != nil {
		return nil, err
	}
	defer bw.Close()
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	diffID := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, diffID.Hash()))
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		return tarEntry(tw, p, filepath.ToSlash(rel), d)
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	d, err := bw.Commit("")
	if err != nil {
		return nil, err
	}
	return &cache.Layer{MediaType: string(types.OCILayer), Digest: d, Size: bw.Size(), DiffID: diffID.Digest()}, nil
}

// tarEntry writes one file of a cache mount; sockets, devices and pipes
// are left out (a cache holds files).
func tarEntry(tw *tar.Writer, p, name string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	target := ""
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if target, err = os.Readlink(p); err != nil {
			return err
		}
	case fi.IsDir(), fi.Mode().IsRegular():
	default:
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	hdr.Name, hdr.Format = name, tar.FormatPAX
	hdr.Uname, hdr.Gname = "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.ModTime = fi.ModTime().UTC().Truncate(time.Microsecond)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Mode = int64(st.Mode & 0o7777)
	}
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// A file that changes size while it is read would break the tar: the
	// mount is locked, so it does not.
	_, err = io.CopyN(tw, f, hdr.Size)
	return err
}

// RestoreCacheMount implements ops.CacheMountRestorer: a cache mount the
// imported caches have is downloaded and extracted into dir (confined to
// it, as a layer is).
func (x *Index) RestoreCacheMount(ctx context.Context, id, dir string) (bool, error) {
	x.mu.Lock()
	m, ok := x.mounts[id]
	x.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := x.opt.Blobs.Ensure(ctx, m.layer.Digest); err != nil {
		return false, err
	}
	rc, err := x.opt.Blobs.V1Layer(m.layer).Uncompressed()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return false, err
	}
	// Bounded as an image layer is: a decompression bomb stops there.
	lr := &limitReader{r: cache.ContextReader(ctx, rc), left: ops.DefaultMaxLayerSize}
	if err := snapshot.ApplyLayer(ctx, dir, lr); err != nil {
		return false, fmt.Errorf("restoring cache mount %q: %w", id, err)
	}
	x.restored.Store(id, m.layer.Size)
	return true, nil
}

// Restored lists the cache mounts restored from the imported caches, with
// their compressed sizes.
func (x *Index) Restored() map[string]int64 {
	out := map[string]int64{}
	x.restored.Range(func(k, v any) bool {
		out[k.(string)] = v.(int64)
		return true
	})
	return out
}

// limitReader fails once more than left bytes were read.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", ops.ErrLayerTooLarge, ops.DefaultMaxLayerSize)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
