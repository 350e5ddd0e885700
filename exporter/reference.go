package exporter

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// The reference grammar of Docker (github.com/distribution/reference),
// written out here so that every name the builder stores, tags or pushes
// is one that docker would accept:
//
//	reference   := name [ ":" tag ] [ "@" digest ]
//	name        := [domain "/"] path-component ["/" path-component]*
//	domain      := host [":" port-number]
//	path-component := alpha-numeric [separator alpha-numeric]*
//	separator   := /[_.]|__|[-]+/
//	tag         := /[\w][\w.-]{0,127}/
var (
	refAlnum     = `[a-z0-9]+`
	refSeparator = `(?:[._]|__|[-]+)`
	refPathComp  = refAlnum + `(?:` + refSeparator + refAlnum + `)*`
	refDomainCmp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	refHost      = `(?:` + refDomainCmp + `(?:\.` + refDomainCmp + `)*|\[(?:[a-fA-F0-9:]+)\])`
	refDomain    = refHost + `(?::[0-9]+)?`
	refTag       = `[\w][\w.-]{0,127}`
	refDigest    = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	refName      = `(?:` + refDomain + `/)?` + refPathComp + `(?:/` + refPathComp + `)*`
	// Compiled at first use, not when the binary starts: the binary
	// is also every RUN's sandbox init (0.7 ms of its start).
	referenceRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(` + refName + `)(?::(` + refTag + `))?(?:@(` + refDigest + `))?$`)
	})
	anyCaseRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(` + strings.ReplaceAll(refName, `[a-z0-9]`, `[a-zA-Z0-9]`) + `)(?::(` + refTag + `))?(?:@(` + refDigest + `))?$`)
	})
	hex64RE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })
)

// ErrInvalidReference is wrapped by every error of ValidateReference.
var ErrInvalidReference = errors.New("invalid reference format")

// maxNameLen is Docker's limit on the name part of a reference.
const maxNameLen = 255

// ValidateReference checks ref against Docker's reference grammar as
// `docker tag` and `docker build -t` do (reference.ParseNormalizedNamed):
// "../x", "x:", "-x", "a//b" and a 64-hex-digit name (an image ID) are
// refused, and so is an upper-case repository. The error is or wraps
// ErrInvalidReference; callers name ref in their own words.
func ValidateReference(ref string) error {
	if ref == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidReference)
	}
	if hex64RE().MatchString(ref) {
		return fmt.Errorf("%w: repository name cannot be a 64-byte hexadecimal string (an image ID)", ErrInvalidReference)
	}
	m := referenceRE().FindStringSubmatch(ref)
	if m == nil {
		if am := anyCaseRE().FindStringSubmatch(ref); am != nil {
			if _, path := splitDomain(am[1]); path != strings.ToLower(path) {
				return fmt.Errorf("%w: repository name (%s) must be lowercase", ErrInvalidReference, path)
			}
		}
		return ErrInvalidReference
	}
	if len(m[1]) > maxNameLen {
		return fmt.Errorf("%w: repository name must not be more than %d characters", ErrInvalidReference, maxNameLen)
	}
	return nil
}

// splitDomain splits a name into its registry and path as Docker does:
// the first component is a registry when it has a "." or ":", is
// "localhost", or has upper-case letters.
func splitDomain(n string) (domain, path string) {
	i := strings.IndexRune(n, '/')
	if i == -1 || (!strings.ContainsAny(n[:i], ".:") && n[:i] != "localhost" && strings.ToLower(n[:i]) == n[:i]) {
		return "", n
	}
	return n[:i], n[i+1:]
}

// ValidateName checks a name to store, tag or push an image under: a
// reference in Docker's grammar without a digest. The error does not
// repeat n.
func ValidateName(n string) error {
	if err := ValidateReference(n); err != nil {
		return err
	}
	if strings.Contains(n, "@") {
		return errors.New("a name to export to cannot have a digest")
	}
	return nil
}
