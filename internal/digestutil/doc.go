// Package digestutil converts between go-containerregistry's v1.Hash and
// the OCI digest.Digest, the two spellings of a content digest the
// registry client and the rest of the code use.
package digestutil
