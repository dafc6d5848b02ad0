# Release builds and the Debian package (docs/install.md). Day-to-day work
# needs only the go command: see the README.

# The version comes from git (packaging/version.sh).
VERSION  ?= $(shell packaging/version.sh)
COMMIT   := $(shell git rev-parse HEAD 2>/dev/null)
DATE     := $(shell git log -1 --format=%cs 2>/dev/null || date -u +%F)
DEB_ARCH ?= $(shell go env GOARCH)
DEB_OUT  ?= dist
LDFLAGS  := -s -w -X main.Version=$(VERSION) -X main.Commit=$(COMMIT)

.PHONY: build deb clean

build:
	mkdir -p dist/build
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o dist/build/outguard ./cmd/outguard
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o dist/build/outguard-load ./cmd/outguard-load

# dist/outguard_<version>_<arch>.deb, or under $(DEB_OUT).
deb: build
	dist/build/outguard manpage --date $(DATE) | gzip -9n > dist/build/outguard.8.gz
	mkdir -p $(DEB_OUT)
	OUTGUARD_VERSION='$(VERSION)' DEB_ARCH='$(DEB_ARCH)' go tool nfpm package \
		--config packaging/nfpm.yaml --packager deb --target $(DEB_OUT)/
	@ls -l $(DEB_OUT)/*.deb

clean:
	rm -rf dist
