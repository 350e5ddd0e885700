package pgzip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// BlockSize is the amount of input compressed as one block. It is fixed:
// the output must not depend on the machine.
const BlockSize = 1 << 20

// dictSize is the deflate window: what a block may refer back to.
const dictSize = 32 << 10

// Writer is a parallel gzip writer. It is not safe for concurrent use.
type Writer struct {
	w     io.Writer
	level int
	buf   []byte // the block being filled
	dict  []byte // the last dictSize bytes before buf
	crc   uint32
	size  uint32 // input size mod 2^32 (ISIZE)
	// queue holds the blocks being compressed, oldest first.
	queue   []*block
	workers chan struct{}
	started bool // a block was submitted (the input is not a single block)
	closed  bool
	err     error
}

type block struct {
	done chan struct{}
	out  bytes.Buffer
	err  error
}

// NewWriterLevel returns a Writer that writes to w at the given flate
// level (gzip.DefaultCompression, or 1-9).
func NewWriterLevel(w io.Writer, level int) (*Writer, error) {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		return nil, errors.New("pgzip: invalid compression level")
	}
	n := runtime.GOMAXPROCS(0)
	return &Writer{
		w: w, level: level,
		buf:     make([]byte, 0, BlockSize),
		workers: make(chan struct{}, n),
	}, nil
}

// header is the member header klauspost/compress/gzip writes: no name,
// no mtime, XFL from the level, OS unknown.
func (z *Writer) header() []byte {
	h := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	switch z.level {
	case flate.BestCompression:
		h[8] = 2
	case flate.BestSpeed:
		h[8] = 4
	}
	return h
}

// writers keeps flate writers per level (index level+2) for reuse.
var writers [flate.BestCompression + 3]sync.Pool

// Write buffers p and hands every full block to a compressing goroutine.
func (z *Writer) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.closed {
		return 0, errors.New("pgzip: write after close")
	}
	n := len(p)
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(n)
	for len(p) > 0 {
		k := min(len(p), BlockSize-len(z.buf))
		z.buf = append(z.buf, p[:k]...)
		p = p[k:]
		if len(z.buf) == BlockSize {
			if err := z.submit(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// submit starts compressing the current block (the last one when final)
// and writes out finished blocks while too many are pending.
func (z *Writer) submit(final bool) error {
	if !z.started {
		if err := z.writeOut(z.header()); err != nil {
			return err
		}
		z.started = true
	}
	b := &block{done: make(chan struct{})}
	data, dict := z.buf, z.dict
	z.queue = append(z.queue, b)
	z.workers <- struct{}{}
	b.out.Grow(len(data) + len(data)/64 + 64) // incompressible data grows a little
	go func() {
		defer func() { <-z.workers; close(b.done) }()
		b.err = compress(&b.out, data, dict, z.level, final)
	}()
	// The next block's dictionary is the tail of this one; both buffers
	// belong to the goroutine now, so the next block gets fresh ones.
	if !final {
		z.dict = append([]byte(nil), data[len(data)-min(len(data), dictSize):]...)
		z.buf = make([]byte, 0, BlockSize)
	}
	for len(z.queue) > cap(z.workers)+1 {
		if err := z.flushOne(); err != nil {
			return err
		}
	}
	return nil
}

// compress deflates data (after dict) into out, ending with a sync flush,
// or with the final block when final.
func compress(out *bytes.Buffer, data, dict []byte, level int, final bool) error {
	pool := &writers[level+2]
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriterDict(out, level, dict); err != nil {
			return err
		}
	} else {
		fw.ResetDict(out, dict)
	}
	defer pool.Put(fw)
	if _, err := fw.Write(data); err != nil {
		return err
	}
	if final {
		return fw.Close()
	}
	return fw.Flush()
}

// flushOne waits for the oldest block and writes it out.
func (z *Writer) flushOne() error {
	b := z.queue[0]
	z.queue = z.queue[1:]
	<-b.done
	if b.err != nil {
		z.err = b.err
		return b.err
	}
	return z.writeOut(b.out.Bytes())
}

func (z *Writer) writeOut(p []byte) error {
	if z.err != nil {
		return z.err
	}
	if _, err := z.w.Write(p); err != nil {
		z.err = err
		return err
	}
	return nil
}

// Close compresses what is left, writes the trailer and waits for all
// blocks. It does not close the underlying writer.
func (z *Writer) Close() error {
	if z.closed {
		return z.err
	}
	z.closed = true
	if z.err != nil {
		z.drain()
		return z.err
	}
	if err := z.submit(true); err != nil {
		z.drain()
		return err
	}
	for len(z.queue) > 0 {
		if err := z.flushOne(); err != nil {
			z.drain()
			return err
		}
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], z.size)
	return z.writeOut(t[:])
}

// drain waits for the blocks still being compressed.
func (z *Writer) drain() {
	for _, b := range z.queue {
		<-b.done
	}
	z.queue = nil
}
