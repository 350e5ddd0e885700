package main

import (
	"github.com/builderdev/builder/build"
)

// Output is one --output destination.
type Output = build.OutputSpec
