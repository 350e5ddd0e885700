// Package logfilter sits between the solver and the progress display: it
// replaces secret values (and their base64 forms) in step output by
// "****" before anything shows or stores them, and clips each step's
// output at a limit (BuildKit's 2 MiB by default) with one
// "[output clipped, ...]" line, so that a RUN printing 500 MB does not
// make 500 MB of log.
package logfilter
