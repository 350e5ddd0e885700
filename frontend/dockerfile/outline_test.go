package dockerfile

import (
	"reflect"
	"testing"
)

const outlineDockerfile = `ARG GO_VERSION=1.22
ARG UNUSED=x
# base is the common base
FROM busybox:${GO_VERSION} AS base
# APP_NAME names the binary
ARG APP_NAME=app
ARG GO_VERSION

FROM base AS build
ARG OUT=/out/${APP_NAME}
RUN --mount=type=secret,id=token,required=true --mount=type=ssh true

# release is what ships
FROM busybox AS release
ARG REL=1
`

func TestListTargets(t *testing.T) {
	t.Parallel()
	got, err := ListTargets(Options{Dockerfile: []byte(outlineDockerfile)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Name: "base", Description: "is the common base", Base: "busybox:${GO_VERSION}", Line: 4},
		{Name: "build", Base: "base", Line: 9},
		{Name: "release", Description: "is what ships", Base: "busybox", Default: true, Line: 14},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets\n got %+v\nwant %+v", got, want)
	}
}

func TestMakeOutline(t *testing.T) {
	t.Parallel()
	got, err := MakeOutline(Options{Dockerfile: []byte(outlineDockerfile), Target: "build", BuildArgs: map[string]string{"GO_VERSION": "1.23"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &Outline{
		Name: "build",
		Args: []OutlineArg{
			// ARG GO_VERSION in the stage, set by --build-arg, is a
			// definition of its own (BuildKit's dispatchArg).
			{Name: "APP_NAME", Value: "app", Description: "names the binary", Line: 6},
			{Name: "GO_VERSION", Value: "1.23", Line: 7},
			{Name: "OUT", Value: "/out/", Line: 10},
		},
		Secrets: []OutlineMount{{ID: "token", Required: true, Line: 11}},
		SSH:     []OutlineMount{{ID: "default", Line: 11}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outline\n got %+v\nwant %+v", got, want)
	}
	if _, err := MakeOutline(Options{Dockerfile: []byte(outlineDockerfile), Target: "nope"}); err == nil {
		t.Error("unknown target: no error")
	}
}

// TestOutlineRecursiveArgs ports BuildKit's testOutlineRecursiveArgs
// (dockerfile_outline_test.go): meta args redefined from themselves and
// stage args built on each other have their expanded values.
func TestOutlineRecursiveArgs(t *testing.T) {
	t.Parallel()
	got, err := MakeOutline(Options{Dockerfile: []byte(`
ARG FOO=123
ARG ABC=abc
ARG DEF=def
ARG FOO=${FOO}${ABC}
ARG BAR=${FOO}456
ARG FOO=${FOO}456${BAR}
FROM scratch
ARG FOO
ARG INFOO=123
ARG INBAR=${INFOO}456
ARG INFOO=${INFOO}456${INBAR}
`)})
	if err != nil {
		t.Fatal(err)
	}
	var names, values []string
	for _, a := range got.Args {
		names = append(names, a.Name)
		values = append(values, a.Value)
	}
	wantNames := []string{"ABC", "BAR", "FOO", "INBAR", "INFOO"}
	wantValues := []string{"abc", "123abc456", "123abc456123abc456", "123456", "123456123456"}
	if !reflect.DeepEqual(names, wantNames) || !reflect.DeepEqual(values, wantValues) {
		t.Errorf("args %v = %v\nwant %v = %v", names, values, wantNames, wantValues)
	}
}

// TestOutlineArgsBuildKit ports BuildKit's testOutlineArgs
// (dockerfile_outline_test.go): global args read by a needed FROM, and
// those their defaults read, are listed; unused ones are not.
func TestOutlineArgsBuildKit(t *testing.T) {
	t.Parallel()
	df := `
ARG inherited=box
ARG inherited2=box2
ARG unused=abc${inherited2}
# sfx is a suffix
ARG sfx="usy${inherited}"

FROM b${sfx} AS first
# this is not assigned to anything
ARG FOO=123
# BAR is a number
ARG BAR=456
RUN true

FROM alpine${unused} AS second
ARG BAZ
RUN true

FROM scratch AS third
ARG ABC=a
# check=skip=all
ARG password
# alternate_password will show up in the outline
# check=skip=all
ARG alternate_password

# target defines build target
FROM third AS target
COPY --from=first /etc/passwd /

FROM second
`
	got, err := MakeOutline(Options{Dockerfile: []byte(df), Target: "target", BuildArgs: map[string]string{"BAR": "678"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []OutlineArg{
		{Name: "inherited", Value: "box", Line: 2},
		{Name: "sfx", Value: "usybox", Description: "is a suffix", Line: 6},
		{Name: "FOO", Value: "123", Line: 10},
		{Name: "BAR", Value: "678", Description: "is a number", Line: 12},
		{Name: "ABC", Value: "a", Line: 20},
		{Name: "password", Line: 22},
		{Name: "alternate_password", Description: "will show up in the outline", Line: 25},
	}
	if got.Name != "target" || got.Description != "defines build target" || !reflect.DeepEqual(got.Args, want) {
		t.Errorf("outline %q %q\n got %+v\nwant %+v", got.Name, got.Description, got.Args, want)
	}
}
