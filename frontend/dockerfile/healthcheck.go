package dockerfile

import (
	"encoding/json"
	"time"
)

// go-containerregistry's v1.HealthConfig has no StartInterval (HEALTHCHECK
// --start-interval, Docker's "StartInterval" in nanoseconds). The frontend
// carries it beside the config: stage.startInterval, inherited from base
// stages and read from base image configs, and Result.HealthcheckStartInterval
// for the exporter to merge into the config JSON.

// rawStartInterval reads config.Healthcheck.StartInterval from a raw image
// config (0 when absent or malformed: the field is optional).
func rawStartInterval(config []byte) time.Duration {
	var c struct {
		Config struct {
			Healthcheck *struct {
				StartInterval time.Duration `json:"StartInterval"`
			} `json:"Healthcheck"`
		} `json:"config"`
	}
	if err := json.Unmarshal(config, &c); err != nil || c.Config.Healthcheck == nil {
		return 0
	}
	return c.Config.Healthcheck.StartInterval
}
