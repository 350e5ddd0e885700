// Package pgzip writes a standard gzip stream (RFC 1952, one member)
// whose deflate data is compressed in fixed-size blocks on several cores,
// as pigz does: each block is compressed on its own with the previous
// block's last 32 KiB as its dictionary and ends with a sync flush, so the
// blocks concatenate into one valid deflate stream that any gzip reader
// decodes.
//
// The output depends only on the input and the level, never on the number
// of cores or on how the input is split into Write calls: the same layer
// gets the same digest on every machine. An input shorter than one block
// comes out byte for byte as klauspost/compress/gzip writes it, so small
// layers keep the digests a single-stream writer gave them.
package pgzip
