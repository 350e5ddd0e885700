package dockerfile

import (
	"fmt"
	"strconv"
	"strings"
)

// linuxSignals are the signal names STOPSIGNAL accepts (without "SIG"), as
// moby/sys/signal's Linux map.
var linuxSignals = map[string]int{
	"ABRT": 6, "ALRM": 14, "BUS": 7, "CHLD": 17, "CLD": 17, "CONT": 18, "FPE": 8,
	"HUP": 1, "ILL": 4, "INT": 2, "IO": 29, "IOT": 6, "KILL": 9, "PIPE": 13,
	"POLL": 29, "PROF": 27, "PWR": 30, "QUIT": 3, "SEGV": 11, "STKFLT": 16,
	"STOP": 19, "SYS": 31, "TERM": 15, "TRAP": 5, "TSTP": 20, "TTIN": 21,
	"TTOU": 22, "URG": 23, "USR1": 10, "USR2": 12, "VTALRM": 26, "WINCH": 28,
	"XCPU": 24, "XFSZ": 25, "RTMIN": 34, "RTMAX": 64,
}

func init() {
	for i := 1; i <= 15; i++ {
		linuxSignals["RTMIN+"+strconv.Itoa(i)] = 34 + i
		linuxSignals["RTMAX-"+strconv.Itoa(i)] = 64 - i
	}
}

// checkSignal validates a STOPSIGNAL value: a positive number or a signal
// name with or without the SIG prefix.
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return fmt.Errorf("invalid signal: %s", s)
		}
		return nil
	}
	if _, ok := linuxSignals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; !ok {
		return fmt.Errorf("invalid signal: %s", s)
	}
	return nil
}
