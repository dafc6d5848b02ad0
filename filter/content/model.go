package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// ErrBadModel is wrapped by the error of Parse for data that is not a
// model of this tokeniser.
var ErrBadModel = errors.New("content: not a usable model")

// magic starts every model file.
var magic = [8]byte{'O', 'G', 'C', 'M', 'O', 'D', 'E', 'L'}

// formatVersion is the layout of the file below.
const formatVersion = 1

// Model is a trained logistic regression over binary features: the score
// of a document with the n distinct features F is
//
//	Bias + Σ_{f∈F} W[f] / √n
//
// It is one flat table, feature ids sorted with their float32 weights, so
// that it loads without allocation per feature and looks up by binary
// search. A Model is immutable and safe for concurrent use.
type Model struct {
	// Bias is the score of a document without features.
	Bias float32
	// Suspect and Spam are the score thresholds chosen at training: from
	// Spam a message is blocked, from Suspect it is counted as uncertain.
	Suspect, Spam float32
	// Tokenizer is the TokenizerVersion the model was trained with.
	Tokenizer uint32
	// Info is free text saying what the model was trained on.
	Info string

	ids     []uint32
	weights []float32
	version string
	// start[b] is the index of the first id whose top indexBits bits are
	// at least b: ids are uniform hashes, so a lookup scans a couple of
	// entries instead of binary-searching the whole table.
	start []uint32
}

// indexBits is the width of the lookup index: 2^16 entries of 4 bytes,
// about 2.4 seed features per bucket.
const indexBits = 16

func (m *Model) index() {
	m.start = make([]uint32, 1<<indexBits+1)
	b := 0
	for i, id := range m.ids {
		for top := int(id >> (32 - indexBits)); b <= top; b++ {
			m.start[b] = uint32(i)
		}
	}
	for ; b < len(m.start); b++ {
		m.start[b] = uint32(len(m.ids))
	}
}

// find returns the index of id in m.ids, or -1.
func (m *Model) find(id uint32) int {
	top := id >> (32 - indexBits)
	for i := m.start[top]; i < m.start[top+1]; i++ {
		if m.ids[i] == id {
			return int(i)
		}
	}
	return -1
}

// NewModel builds a model from parallel slices of feature ids and weights,
// which it sorts; for training tools and tests.
func NewModel(ids []uint32, weights []float32, bias, suspect, spam float32, info string) *Model {
	m := &Model{Bias: bias, Suspect: suspect, Spam: spam, Tokenizer: TokenizerVersion, Info: info}
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
	m.ids = make([]uint32, 0, len(ids))
	m.weights = make([]float32, 0, len(ids))
	for _, i := range idx {
		if n := len(m.ids); n > 0 && m.ids[n-1] == ids[i] {
			m.weights[n-1] += weights[i]
			continue
		}
		m.ids = append(m.ids, ids[i])
		m.weights = append(m.weights, weights[i])
	}
	m.version = m.hash()
	m.index()
	return m
}

// Len is the number of features with a weight.
func (m *Model) Len() int { return len(m.ids) }

// Version names the model by its content: "seed-" and the start of the
// SHA-256 of its table. Two nodes with the same file report the same
// version.
func (m *Model) Version() string { return m.version }

// Weight returns the weight of feature id, 0 when the model has none.
func (m *Model) Weight(id uint32) float32 {
	if i := m.find(id); i >= 0 {
		return m.weights[i]
	}
	return 0
}

// Score returns the model's score of f.
func (m *Model) Score(f Features) float64 {
	if len(f) == 0 {
		return float64(m.Bias)
	}
	var sum float32
	for _, id := range f {
		if i := m.find(id); i >= 0 {
			sum += m.weights[i]
		}
	}
	return float64(m.Bias) + float64(sum)/math.Sqrt(float64(len(f)))
}

// Each calls fn with every feature and its weight, in id order.
func (m *Model) Each(fn func(id uint32, w float32)) {
	for i, id := range m.ids {
		fn(id, m.weights[i])
	}
}

// Marshal encodes the model in the format Parse reads: a header (magic,
// format, tokeniser version, bias, thresholds, feature count, info) and
// the table, little-endian.
func (m *Model) Marshal() []byte {
	var b bytes.Buffer
	b.Write(magic[:])
	le := binary.LittleEndian
	var hdr [4 * 6]byte
	le.PutUint32(hdr[0:], formatVersion)
	le.PutUint32(hdr[4:], m.Tokenizer)
	le.PutUint32(hdr[8:], math.Float32bits(m.Bias))
	le.PutUint32(hdr[12:], math.Float32bits(m.Suspect))
	le.PutUint32(hdr[16:], math.Float32bits(m.Spam))
	le.PutUint32(hdr[20:], uint32(len(m.ids)))
	b.Write(hdr[:])
	var n [4]byte
	le.PutUint32(n[:], uint32(len(m.Info)))
	b.Write(n[:])
	b.WriteString(m.Info)
	out := b.Bytes()
	out = slices.Grow(out, 8*len(m.ids))
	for _, id := range m.ids {
		out = le.AppendUint32(out, id)
	}
	for _, w := range m.weights {
		out = le.AppendUint32(out, math.Float32bits(w))
	}
	return out
}

// maxInfo bounds the info text of a model file.
const maxInfo = 64 << 10

// Parse decodes a model written by Marshal. It checks the layout, the
// tokeniser version, that ids are strictly increasing and that every
// number is finite, so a damaged or foreign file is refused rather than
// scoring nonsense.
func Parse(data []byte) (*Model, error) {
	le := binary.LittleEndian
	if len(data) < len(magic)+28 || !bytes.Equal(data[:len(magic)], magic[:]) {
		return nil, fmt.Errorf("%w: no model header", ErrBadModel)
	}
	d := data[len(magic):]
	if v := le.Uint32(d[0:]); v != formatVersion {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrBadModel, v, formatVersion)
	}
	m := &Model{
		Tokenizer: le.Uint32(d[4:]),
		Bias:      math.Float32frombits(le.Uint32(d[8:])),
		Suspect:   math.Float32frombits(le.Uint32(d[12:])),
		Spam:      math.Float32frombits(le.Uint32(d[16:])),
	}
	if m.Tokenizer != TokenizerVersion {
		return nil, fmt.Errorf("%w: trained with tokenizer %d, this build has %d: retrain it", ErrBadModel, m.Tokenizer, TokenizerVersion)
	}
	n := uint64(le.Uint32(d[20:]))
	info := uint64(le.Uint32(d[24:]))
	d = d[28:]
	if info > maxInfo || uint64(len(d)) != info+8*n {
		return nil, fmt.Errorf("%w: truncated or padded table", ErrBadModel)
	}
	m.Info = string(d[:info])
	d = d[info:]
	m.ids = make([]uint32, n)
	m.weights = make([]float32, n)
	for i := range m.ids {
		m.ids[i] = le.Uint32(d[4*i:])
		if i > 0 && m.ids[i] <= m.ids[i-1] {
			return nil, fmt.Errorf("%w: feature ids out of order at %d", ErrBadModel, i)
		}
	}
	d = d[4*n:]
	for i := range m.weights {
		w := math.Float32frombits(le.Uint32(d[4*i:]))
		if !finite(w) {
			return nil, fmt.Errorf("%w: weight %d is not finite", ErrBadModel, i)
		}
		m.weights[i] = w
	}
	for _, f := range []float32{m.Bias, m.Suspect, m.Spam} {
		if !finite(f) {
			return nil, fmt.Errorf("%w: bias or threshold is not finite", ErrBadModel)
		}
	}
	m.version = m.hash()
	m.index()
	return m, nil
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

func (m *Model) hash() string {
	h := sha256.New()
	var b [4]byte
	for i, id := range m.ids {
		binary.LittleEndian.PutUint32(b[:], id)
		h.Write(b[:])
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(m.weights[i]))
		h.Write(b[:])
	}
	binary.LittleEndian.PutUint32(b[:], math.Float32bits(m.Bias))
	h.Write(b[:])
	return "seed-" + hex.EncodeToString(h.Sum(nil)[:6])
}
