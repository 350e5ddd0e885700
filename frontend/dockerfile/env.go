package dockerfile

import "strings"

// envList is an ordered environment, KEY=VALUE. Setting a key moves it to the
// end, like BuildKit's llb.EnvList, so the order is that of the last
// assignment. Values are never mutated in place: set returns a new list, so
// stages can share lists.
type envList []string

func splitKV(kv string) (string, string) {
	k, v, _ := strings.Cut(kv, "=")
	return k, v
}

// Get implements shell.EnvGetter.
func (e envList) Get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v := splitKV(e[i]); k == key {
			return v, true
		}
	}
	return "", false
}

// Keys implements shell.EnvGetter.
func (e envList) Keys() []string {
	keys := make([]string, 0, len(e))
	for _, kv := range e {
		k, _ := splitKV(kv)
		keys = append(keys, k)
	}
	return keys
}

// set returns a copy of e with key=value as its last entry.
func (e envList) set(key, value string) envList {
	out := make(envList, 0, len(e)+1)
	for _, kv := range e {
		if k, _ := splitKV(kv); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// unset returns a copy of e without key.
func (e envList) unset(key string) envList {
	out := make(envList, 0, len(e))
	for _, kv := range e {
		if k, _ := splitKV(kv); k != key {
			out = append(out, kv)
		}
	}
	return out
}

// slice returns a copy of the entries.
func (e envList) slice() []string {
	if len(e) == 0 {
		return nil
	}
	return append([]string(nil), e...)
}

// addEnv sets key in an image config's Env, in place when it exists (as
// Docker does for ENV) and appended otherwise.
func addEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _ := splitKV(kv); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
