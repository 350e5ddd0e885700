package fileop

import (
	"fmt"
	"strconv"
	"strings"
)

// modeSpec is a parsed Copy.Chmod: an octal mode or BSD chmod(1) style
// symbolic clauses.
type modeSpec struct {
	octal   bool
	mode    uint32 // octal mode (07777)
	clauses []clause
}

type clause struct {
	who uint32 // mask of the bits the clause may touch (ugo), 0 = all, umask ignored
	ops []modeOp
}

type modeOp struct {
	op    byte   // '+', '-', '='
	perm  uint32 // bits from r, w, x, s, t
	copyX bool   // X: execute if dir or already executable by someone
	from  byte   // 'u', 'g', 'o' to copy bits from, 0 = none
}

const (
	whoU = 0o4700 // rwx and setuid
	whoG = 0o2070 // rwx and setgid
	whoO = 0o1007 // rwx and sticky
	whoA = whoU | whoG | whoO
)

// parseMode parses an octal ("0755", up to 07777) or symbolic
// ("u=rwX,go=rX", "+x", "a-w", "g=u") mode.
func parseMode(s string) (*modeSpec, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] >= '0' && s[0] <= '9' {
		v, err := strconv.ParseUint(s, 8, 32)
		if err != nil || v > 0o7777 {
			return nil, fmt.Errorf("invalid chmod parameter: %q. it should be octal string and between 0 and 07777", s)
		}
		return &modeSpec{octal: true, mode: uint32(v)}, nil
	}
	ms := &modeSpec{}
	for _, part := range strings.Split(s, ",") {
		var c clause
		i := 0
		for ; i < len(part); i++ {
			switch part[i] {
			case 'u':
				c.who |= whoU
			case 'g':
				c.who |= whoG
			case 'o':
				c.who |= whoO
			case 'a':
				c.who |= whoA
			default:
				goto ops
			}
		}
	ops:
		if i >= len(part) {
			return nil, fmt.Errorf("invalid chmod parameter %q: missing operator", s)
		}
		for i < len(part) {
			op := modeOp{op: part[i]}
			if op.op != '+' && op.op != '-' && op.op != '=' {
				return nil, fmt.Errorf("invalid chmod parameter %q: bad operator %q", s, part[i])
			}
			i++
			for ; i < len(part); i++ {
				switch ch := part[i]; ch {
				case 'r':
					op.perm |= 0o444
				case 'w':
					op.perm |= 0o222
				case 'x':
					op.perm |= 0o111
				case 'X':
					op.copyX = true
				case 's':
					op.perm |= 0o6000
				case 't':
					op.perm |= 0o1000
				case 'u', 'g', 'o':
					if op.perm != 0 || op.copyX || op.from != 0 {
						return nil, fmt.Errorf("invalid chmod parameter %q", s)
					}
					op.from = ch
				default:
					goto next
				}
			}
		next:
			c.ops = append(c.ops, op)
		}
		ms.clauses = append(ms.clauses, c)
	}
	return ms, nil
}

// apply computes the new permission bits (07777) from the old ones.
func (ms *modeSpec) apply(old uint32, isDir bool) uint32 {
	if ms.octal {
		return ms.mode
	}
	m := old & 0o7777
	for _, c := range ms.clauses {
		who := c.who
		if who == 0 {
			who = whoA
		}
		for _, op := range c.ops {
			perm := op.perm
			if op.copyX && (isDir || old&0o111 != 0) {
				perm |= 0o111
			}
			if op.from != 0 {
				var bits uint32
				switch op.from {
				case 'u':
					bits = (m >> 6) & 7
				case 'g':
					bits = (m >> 3) & 7
				case 'o':
					bits = m & 7
				}
				perm |= bits<<6 | bits<<3 | bits
			}
			perm &= who
			switch op.op {
			case '+':
				m |= perm
			case '-':
				m &^= perm
			case '=':
				clear := who
				if isDir {
					// As chmod(1): "=" keeps set-id bits of directories
					// unless they are named.
					clear &^= 0o6000
				}
				m = (m &^ clear) | perm
			}
		}
	}
	return m
}
