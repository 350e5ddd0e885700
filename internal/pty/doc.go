// Package pty allocates pseudo-terminal pairs and switches terminals to
// raw mode, for running sandboxed processes with a terminal (builder run
// -t). It uses /dev/ptmx directly through golang.org/x/sys/unix.
package pty
