package exporter

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestConfigJSONStartInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		hc       *v1.HealthConfig
		interval time.Duration
		want     string // the Healthcheck object, "" = absent
	}{
		{"all options", &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, Timeout: 3 * time.Second, StartPeriod: 10 * time.Second, Retries: 4},
			2 * time.Second,
			`{"Test":["CMD","true"],"Interval":5000000000,"Timeout":3000000000,"StartPeriod":10000000000,"StartInterval":2000000000,"Retries":4}`},
		{"no retries", &v1.HealthConfig{Test: []string{"CMD-SHELL", "x"}}, time.Second,
			`{"Test":["CMD-SHELL","x"],"StartInterval":1000000000}`},
		{"empty object", &v1.HealthConfig{}, time.Millisecond, `{"StartInterval":1000000}`},
		{"no interval", &v1.HealthConfig{Test: []string{"NONE"}}, 0, `{"Test":["NONE"]}`},
		{"no healthcheck", nil, time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := &Image{HealthcheckStartInterval: tt.interval}
			img.Config.Config.Healthcheck = tt.hc
			img.Config.Config.Labels = map[string]string{"Healthcheck": `{"Test":["NONE"]}`}
			b, err := img.ConfigJSON()
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Config struct {
					Healthcheck json.RawMessage
					Labels      map[string]string
				} `json:"config"`
			}
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatalf("invalid JSON %s: %v", b, err)
			}
			if got := string(cfg.Config.Healthcheck); got != tt.want {
				t.Errorf("Healthcheck = %s, want %s", got, tt.want)
			}
			if cfg.Config.Labels["Healthcheck"] != `{"Test":["NONE"]}` {
				t.Errorf("labels changed: %v", cfg.Config.Labels)
			}
			// The rest of the config is what v1 marshals.
			if tt.interval != 0 && tt.hc != nil && !strings.Contains(string(b), `"StartInterval":`) {
				t.Errorf("config %s has no StartInterval", b)
			}
		})
	}
}
