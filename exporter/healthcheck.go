package exporter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// withStartInterval adds "StartInterval" to the Healthcheck object of the
// marshalled config cfgJSON, where Docker puts it (after StartPeriod, before
// Retries), keeping every other byte as encoding/json wrote it.
func withStartInterval(cfgJSON []byte, hc *v1.HealthConfig, d time.Duration) ([]byte, error) {
	obj, err := json.Marshal(hc)
	if err != nil {
		return nil, err
	}
	old := append([]byte(`"Healthcheck":`), obj...)
	if bytes.Count(cfgJSON, old) != 1 {
		return nil, errors.New("healthcheck: cannot find the Healthcheck object to add StartInterval to")
	}
	field := fmt.Sprintf(`"StartInterval":%d`, int64(d))
	var merged []byte
	if i := bytes.Index(obj, []byte(`"Retries":`)); i >= 0 {
		merged = append(append(append([]byte{}, obj[:i]...), field+","...), obj[i:]...)
	} else {
		sep := ","
		if len(obj) == 2 { // {}
			sep = ""
		}
		merged = append(append([]byte{}, obj[:len(obj)-1]...), sep+field+"}"...)
	}
	return bytes.Replace(cfgJSON, old, append([]byte(`"Healthcheck":`), merged...), 1), nil
}
