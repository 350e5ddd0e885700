package main

import "os"

// progressHelp is the help of every --progress flag.
const progressHelp = `Set type of progress output ("auto", "plain", "tty", "quiet", "rawjson"); env BUILDER_PROGRESS, BUILDKIT_PROGRESS`

// defaultProgress is --progress when the flag is not given:
// $BUILDER_PROGRESS, else $BUILDKIT_PROGRESS (as buildx reads it), else
// "auto".
func defaultProgress() string {
	for _, k := range []string{"BUILDER_PROGRESS", "BUILDKIT_PROGRESS"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "auto"
}
