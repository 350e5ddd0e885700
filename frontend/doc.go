// Package frontend holds the build frontends: packages that turn a build
// definition (today a Dockerfile, see package frontend/dockerfile) into an
// llb graph and the image config of its result.
//
// A frontend knows nothing of mounts, processes, caches or registries'
// transports: it reads its definition, asks an image resolver for base image
// configs and returns a graph that the solver runs.
package frontend
