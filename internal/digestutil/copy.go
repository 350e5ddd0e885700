package digestutil

import "io"

// copyChunk is the unit CopyHashing reads, writes and hashes.
const copyChunk = 1 << 20

// CopyHashing copies src to dst and writes the same bytes to h (a hash or
// a digest verifier, which never fail), hashing each chunk on another
// goroutine while the next chunk is read and written: on two cores a large blob costs about the larger of the copy
// and the hash, not their sum (sha256 of 160 MB is 80-100 ms). It returns
// the bytes copied; h holds all of them once it returns, also on error.
func CopyHashing(dst io.Writer, src io.Reader, h io.Writer) (int64, error) {
	// Three buffers: one being hashed, one being read and written, one
	// spare so neither side waits on the other for a free one.
	free := make(chan []byte, 3)
	for range 3 {
		free <- make([]byte, copyChunk)
	}
	toHash := make(chan []byte, 3)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range toHash {
			h.Write(b)
			free <- b[:cap(b)]
		}
	}()
	var n int64
	var err error
	for {
		b := <-free
		var k int
		k, err = io.ReadFull(src, b)
		if k > 0 {
			// Written before it is handed to the hasher, which
			// recycles the buffer: dst never sees a reused one.
			if _, werr := dst.Write(b[:k]); werr != nil {
				err = werr
				break
			}
			n += int64(k)
			toHash <- b[:k]
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
			break
		}
		if err != nil {
			break
		}
	}
	close(toHash)
	<-hashed
	return n, err
}
