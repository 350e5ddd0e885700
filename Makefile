# make              build a static builder binary (CGO_ENABLED=0) as bin/builder
# make install      install it as $(DESTDIR)$(PREFIX)/bin/builder (default /usr/local/bin)
# make uninstall    remove it again
#
# The version and commit it prints (builder version) come from git; set
# VERSION=... COMMIT=... to override them.

GO      ?= go
PREFIX  ?= /usr/local
BINDIR  ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all install uninstall clean $(BINDIR)/builder

all: $(BINDIR)/builder

# Always rebuilt: go build itself knows what is up to date.
$(BINDIR)/builder:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/builder

install: $(BINDIR)/builder
	install -D -m 0755 $(BINDIR)/builder $(DESTDIR)$(PREFIX)/bin/builder

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/builder

clean:
	rm -f $(BINDIR)/builder
