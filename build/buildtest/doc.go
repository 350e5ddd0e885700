// Package buildtest is the harness of the golden suite (testdata/dockerfiles)
// and of the end-to-end tests that build images: it starts an in-process
// registry with the busybox base image and the HTTP and git servers of the
// ADD cases, loads cases, and renders an image's layers and config the way
// the expected files hold them. The -update flag rewrites expected files.
//
// Only tests import it.
package buildtest
