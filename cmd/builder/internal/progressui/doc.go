// Package progressui shows a build's progress on a terminal or in a log.
//
// A Display is a solver.Reporter: the solver sends it a Status on every
// change of a vertex and a Log for every chunk of a step's output. It writes
// in one of two modes:
//
//   - plain: numbered lines in the style of BuildKit, fit for CI logs and
//     pipes. Each vertex gets a number when it first appears; its header,
//     its output lines (prefixed with the seconds since the step started) and
//     its final line (DONE with the wall time and resource use, CACHED or
//     ERROR) carry that number. When steps run at once their output
//     interleaves; a vertex's header is printed again whenever its output
//     resumes after another vertex's output.
//   - tty: a live view redrawn at most ten times a second, listing the steps
//     with their elapsed time and the last lines of the running ones.
//
// Close prints the end-of-build warnings and a summary of the wall time, CPU
// time, peak memory and I/O of all steps.
package progressui
