// Package report turns the record of one build (its steps with their
// times, cache results, cache-miss reasons and cgroup accounting, the bytes
// it pulled and pushed, and the final image's layers) into one
// self-contained HTML page: a timeline of every step, the critical path,
// resource use per step and the image's layers, with no script, font or
// style from the network.
//
// The record is the JSON that `builder build --metadata-file` writes
// (Metadata), so the page can also be made later for a past build.
package report
