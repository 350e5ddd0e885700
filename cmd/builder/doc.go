// Command builder builds container images from Dockerfiles without a daemon.
//
//	builder build [-f Dockerfile] [-t name[:tag]]... [--build-arg K=V]...
//	              [--target STAGE] [--no-cache] [--progress auto|plain|tty]
//	              [--output type=oci,dest=FILE] [--root DIR] CONTEXT
//
// The command only turns flags into options, wires the packages together and
// prints progress; the work happens in frontend, solver and exporter.
package main
