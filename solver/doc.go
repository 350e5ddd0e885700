// Package solver runs an llb graph: it computes each vertex's cache key,
// reuses results stored under those keys, executes the rest concurrently
// through a Worker, and reports progress.
//
// Cache keys follow CacheMap: key = sha256(Digest, dep_0, ..., dep_n), where
// dep_i is input i's cache key or, with a ContentFunc, a checksum of input
// i's result. Keys are computed bottom-up without executing anything except
// the inputs that a ContentFunc reads and volatile ops whose key a consumer
// needs. A vertex whose key hits (and whose result the worker can reload) is
// not executed, and neither are its inputs: when the final vertex is cached,
// a base image is never pulled.
//
// A Solver memoizes per vertex digest, so a vertex reached along several
// paths, or by concurrent Solve calls, is computed once. Exec calls are
// bounded by Options.Parallelism; waiting for inputs holds no slot. The first
// error cancels the rest of the solve and is returned as a *VertexError
// naming the vertex it came from.
package solver
