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
	got, err := MakeOutline(Options{Dockerfile: []byte(outlineDockerfile), Target: "build", BuildArgs: map[string]string{"GO_VERSION": "1.23"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &Outline{
		Name: "build",
		Args: []OutlineArg{
			{Name: "GO_VERSION", Value: "1.23", Line: 1},
			{Name: "APP_NAME", Value: "app", Description: "names the binary", Line: 6},
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
