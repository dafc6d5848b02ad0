package filter

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

var zipMagic = []byte("PK\x03\x04")

func isZip(p *Part) bool {
	switch p.ContentType {
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return true
	}
	return strings.HasSuffix(strings.ToLower(p.Filename), ".zip") || bytes.HasPrefix(p.Data, zipMagic)
}

// listZip lists a zip archive held in memory and reads the start of each
// entry, nested archives included, within the archive limits. Nothing is
// written to disk.
func listZip(data []byte, lim Limits, defect func(string)) []ArchiveEntry {
	budget := lim.MaxArchiveBytes
	var out []ArchiveEntry
	var walk func(data []byte, prefix string, depth int)
	walk = func(data []byte, prefix string, depth int) {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			defect(fmt.Sprintf("archive %s: %v", strings.TrimSuffix(prefix, "/"), err))
			return
		}
		if zr == nil {
			return
		}
		for _, f := range zr.File {
			if len(out) >= lim.MaxArchiveEntries {
				defect(fmt.Sprintf("archive with more than %d entries: rest not listed", lim.MaxArchiveEntries))
				return
			}
			e := ArchiveEntry{Name: prefix + f.Name, Size: f.UncompressedSize64, Encrypted: f.Flags&1 != 0}
			if !e.Encrypted && budget > 0 && !strings.HasSuffix(f.Name, "/") {
				if rc, err := f.Open(); err == nil {
					d, _ := io.ReadAll(io.LimitReader(rc, budget))
					rc.Close()
					budget -= int64(len(d))
					e.Data = d
				}
			}
			out = append(out, e)
			if bytes.HasPrefix(e.Data, zipMagic) {
				if depth >= lim.MaxArchiveDepth {
					defect(fmt.Sprintf("archives nested deeper than %d: not opened", lim.MaxArchiveDepth))
					continue
				}
				walk(e.Data, e.Name+"/", depth+1)
			}
		}
	}
	walk(data, "", 1)
	return out
}
