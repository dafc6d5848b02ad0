package filter

import (
	"bytes"
	"encoding/binary"
	"path"
	"strings"
)

// DefaultDangerousExtensions are file name extensions that run code when
// opened on a common desktop, plus disk images used to smuggle them past
// filters.
var DefaultDangerousExtensions = []string{
	"exe", "scr", "com", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse",
	"wsf", "wsh", "wsc", "hta", "msi", "msp", "cpl", "jar", "ps1", "psm1",
	"lnk", "reg", "dll", "scf", "msc", "gadget", "application", "appx",
	"msix", "iso", "img", "vhd", "vhdx", "chm",
}

// DefaultMacroExtensions are the macro-enabled Office formats.
var DefaultMacroExtensions = []string{
	"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm",
}

// decoyExtensions are document extensions that make a double extension
// ("invoice.pdf.exe") deceptive.
var decoyExtensions = map[string]bool{
	"pdf": true, "doc": true, "docx": true, "xls": true, "xlsx": true, "ppt": true,
	"pptx": true, "txt": true, "rtf": true, "jpg": true, "jpeg": true, "png": true,
	"gif": true, "zip": true, "htm": true, "html": true, "csv": true, "odt": true,
	"mp3": true, "mp4": true,
}

// executableTypes are media types declared for executables.
var executableTypes = map[string]bool{
	"application/x-msdownload":                      true,
	"application/x-msdos-program":                   true,
	"application/x-dosexec":                         true,
	"application/x-executable":                      true,
	"application/vnd.microsoft.portable-executable": true,
	"application/x-ms-shortcut":                     true,
	"application/hta":                               true,
}

// cleanName trims what Windows ignores at the end of a file name.
func cleanName(n string) string {
	n = strings.ToLower(n)
	n = strings.TrimRight(n, " .\t")
	if i := strings.LastIndexAny(n, `/\`); i >= 0 {
		n = n[i+1:]
	}
	return n
}

// exts returns the last and the second-to-last extension of a name.
func exts(name string) (last, prev string) {
	last = strings.TrimPrefix(path.Ext(name), ".")
	if last == "" {
		return "", ""
	}
	rest := strings.TrimRight(strings.TrimSuffix(name, "."+last), " .")
	prev = strings.TrimPrefix(path.Ext(rest), ".")
	return last, prev
}

// isPE reports whether data starts a Windows portable executable: an MZ
// header whose e_lfanew points at a "PE\0\0" signature.
func isPE(data []byte) bool {
	if len(data) < 0x40 || data[0] != 'M' || data[1] != 'Z' {
		return false
	}
	off := int(binary.LittleEndian.Uint32(data[0x3c:]))
	return off > 0 && off+4 <= len(data) && bytes.Equal(data[off:off+4], []byte("PE\x00\x00"))
}

// hasVBA reports whether an Office Open XML archive carries a VBA project,
// whatever its file name says.
func hasVBA(entries []ArchiveEntry) bool {
	for _, e := range entries {
		if strings.HasSuffix(strings.ToLower(e.Name), "vbaproject.bin") {
			return true
		}
	}
	return false
}

func (s *scan) attachments(m *Message) {
	for _, p := range m.Parts {
		name := cleanName(p.Filename)
		last, prev := exts(name)
		switch {
		case s.b.dangerous[last] && decoyExtensions[prev]:
			s.hit(RuleDoubleExtension)
		case s.b.dangerous[last], executableTypes[p.ContentType], isPE(p.Data):
			s.hit(RuleExecutableAttachment)
		case s.b.macro[last]:
			s.hit(RuleMacroAttachment)
		}
		if hasVBA(p.Archive) {
			s.hit(RuleMacroAttachment)
		}
		for _, e := range p.Archive {
			el, ep := exts(cleanName(e.Name))
			if s.b.dangerous[el] || isPE(e.Data) {
				s.hit(RuleArchivedExecutable)
			}
			if s.b.dangerous[el] && decoyExtensions[ep] {
				s.hit(RuleDoubleExtension)
			}
		}
		if p.PasswordForm {
			if p.IsAttachment() {
				s.hit(RuleHTMLAttachPassword)
			} else {
				s.hit(RuleHTMLPasswordForm)
			}
		}
	}
}
