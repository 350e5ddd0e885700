package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// stdinKind is what a build context "-" turned out to be, as buildx
// decides by the first bytes: an archive is the context, anything else is
// a Dockerfile built with an empty context (docker build - < Dockerfile).
type stdinKind int

const (
	stdinArchive stdinKind = iota
	stdinDockerfile
)

// archiveHeaderSize is the size of a tar header; buildx peeks two.
const archiveHeaderSize = 512

var (
	gzipMagic  = []byte{0x1f, 0x8b, 0x08}
	bzip2Magic = []byte{0x42, 0x5a, 0x68}
	xzMagic    = []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniffStdin peeks at r: a compressed stream or a tar is an archive
// (returned decompressed, ready for extractContextTar), anything else a
// Dockerfile (returned whole, as read).
func sniffStdin(r io.Reader) (stdinKind, io.Reader, error) {
	br := bufio.NewReaderSize(r, 2*archiveHeaderSize)
	magic, err := br.Peek(2 * archiveHeaderSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return 0, nil, fmt.Errorf("reading the context from stdin: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, nil, fmt.Errorf("the gzip context on stdin: %w", err)
		}
		return stdinArchive, zr, nil
	case bytes.HasPrefix(magic, bzip2Magic):
		return stdinArchive, bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, xzMagic), bytes.HasPrefix(magic, zstdMagic):
		return 0, nil, errors.New("the context on stdin is xz or zstd compressed: only plain, gzip and bzip2 tars are supported")
	}
	if _, err := tar.NewReader(bytes.NewReader(magic)).Next(); err == nil {
		return stdinArchive, br, nil
	}
	return stdinDockerfile, br, nil
}
