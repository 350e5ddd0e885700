package dockerfile

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// MaxLayers is the most layers a stage may have: overlayfs stacks at
// most 500 lower directories (the kernel's OVL_MAX_STACK), and every
// layer of a stage is one when a RUN or COPY mounts it. Past it a build
// would fail deep in a mount ("invalid argument"); the frontend refuses
// it before anything runs.
const MaxLayers = 500

// checkLayerCount fails when history, a stage's after one instruction,
// has more than MaxLayers layers.
func checkLayerCount(history []v1.History) error {
	n := 0
	for _, h := range history {
		if !h.EmptyLayer {
			n++
		}
	}
	if n <= MaxLayers {
		return nil
	}
	return fmt.Errorf("this instruction makes layer %d of the stage, more than the %d overlayfs can stack: combine instructions (e.g. one COPY of a directory, one RUN with &&) or start from an image with fewer layers", n, MaxLayers)
}
