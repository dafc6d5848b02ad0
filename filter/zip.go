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

// ArchiveHeadBytes is how much of an entry is read once the archive's
// MaxArchiveBytes are spent: enough for the executable header and test
// file checks, which look at an entry's start.
const ArchiveHeadBytes = 1024

// archiveName reports whether an entry name is that of a zip archive.
func archiveName(name string) bool {
	last, _ := exts(cleanName(name))
	return last == "zip"
}

// joinEntry names an archive entry within a part: "2/docs/a.zip".
func joinEntry(part, entry string) string {
	if entry == "" {
		return part
	}
	return part + "/" + entry
}

// listZip lists a zip archive held in memory and reads the start of each
// entry, nested archives included, within the archive limits. Nothing is
// written to disk. What cannot be opened or read (a limit, encryption,
// damage) is reported to gap with the limit's name and the entry.
func listZip(data []byte, lim Limits, defect func(string), gap func(limit, entry string)) []ArchiveEntry {
	budget := lim.MaxArchiveBytes
	var out []ArchiveEntry
	var walk func(data []byte, prefix string, depth int)
	walk = func(data []byte, prefix string, depth int) {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			defect(fmt.Sprintf("archive %s: %v", strings.TrimSuffix(prefix, "/"), err))
			gap(LimitArchiveUnreadable, strings.TrimSuffix(prefix, "/"))
			return
		}
		if zr == nil {
			return
		}
		for _, f := range zr.File {
			if len(out) >= lim.MaxArchiveEntries {
				defect(fmt.Sprintf("archive with more than %d entries: rest not listed", lim.MaxArchiveEntries))
				gap(LimitArchiveEntries, prefix+f.Name)
				return
			}
			e := ArchiveEntry{Name: prefix + f.Name, Size: f.UncompressedSize64, Encrypted: f.Flags&1 != 0}
			whole := true
			switch {
			case strings.HasSuffix(f.Name, "/"):
			case e.Encrypted:
				gap(LimitArchiveEncrypted, e.Name)
			default:
				want := max(budget, ArchiveHeadBytes)
				rc, err := f.Open()
				if err != nil {
					defect(fmt.Sprintf("archive entry %s: %v", e.Name, err))
					gap(LimitArchiveUnreadable, e.Name)
					break
				}
				d, err := io.ReadAll(io.LimitReader(rc, want))
				rc.Close()
				if err != nil {
					defect(fmt.Sprintf("archive entry %s: %v", e.Name, err))
					gap(LimitArchiveUnreadable, e.Name)
				}
				budget = max(budget-int64(len(d)), 0)
				e.Data = d
				whole = int64(len(d)) < want || uint64(len(d)) == f.UncompressedSize64
			}
			out = append(out, e)
			if bytes.HasPrefix(e.Data, zipMagic) || (archiveName(f.Name) && !e.Encrypted) {
				switch {
				case depth >= lim.MaxArchiveDepth:
					defect(fmt.Sprintf("archives nested deeper than %d: not opened", lim.MaxArchiveDepth))
					gap(LimitArchiveDepth, e.Name)
				case !whole:
					defect(fmt.Sprintf("archive %s: larger than what is left of %d bytes: not opened", e.Name, lim.MaxArchiveBytes))
					gap(LimitArchiveBytes, e.Name)
				default:
					walk(e.Data, e.Name+"/", depth+1)
				}
			}
		}
	}
	walk(data, "", 1)
	return out
}
