package content

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Example is one labelled document for Train.
type Example struct {
	// Features are the document's features (Extract's result, copied).
	Features Features
	// Spam is the label.
	Spam bool
	// Weight scales the example's loss; 0 means 1.
	Weight float64
}

// TrainOptions tune Train. Zero fields take the defaults.
type TrainOptions struct {
	// Epochs over the data; default 30.
	Epochs int
	// L2 is the regularisation strength per example; default 1e-4.
	L2 float64
	// Rate is AdaGrad's base learning rate; default 0.5.
	Rate float64
	// MinDocs drops features seen in fewer training documents; default 1.
	MinDocs int
	// MinBigramDocs drops bigrams seen in fewer documents; default 2.
	MinBigramDocs int
	// IsBigram tells bigram features apart, for MinBigramDocs; nil treats
	// no feature as a bigram.
	IsBigram func(id uint32) bool
	// Seed makes the shuffling, and so the model, reproducible.
	Seed uint64
}

func (o TrainOptions) withDefaults() TrainOptions {
	if o.Epochs == 0 {
		o.Epochs = 30
	}
	if o.L2 == 0 {
		o.L2 = 1e-4
	}
	if o.Rate == 0 {
		o.Rate = 0.5
	}
	if o.MinDocs == 0 {
		o.MinDocs = 1
	}
	if o.MinBigramDocs == 0 {
		o.MinBigramDocs = 2
	}
	return o
}

// Train fits a logistic regression to the examples by AdaGrad stochastic
// gradient descent on the weighted log loss with L2 regularisation, and
// returns the bias and the non-zero weights. Each example's feature value
// is 1/√n, n its number of distinct features, matching Model.Score.
func Train(ex []Example, opt TrainOptions) (bias float32, ids []uint32, weights []float32) {
	opt = opt.withDefaults()
	df := map[uint32]int{}
	for _, e := range ex {
		for _, id := range e.Features {
			df[id]++
		}
	}
	index := map[uint32]int32{}
	var vocab []uint32
	for id, n := range df {
		min := opt.MinDocs
		if opt.IsBigram != nil && opt.IsBigram(id) {
			min = max(min, opt.MinBigramDocs)
		}
		if n >= min {
			index[id] = int32(len(vocab))
			vocab = append(vocab, id)
		}
	}
	// Sort the vocabulary so that the result does not depend on map order.
	slices.Sort(vocab)
	for i, id := range vocab {
		index[id] = int32(i)
	}
	type doc struct {
		idx    []int32
		x      float64
		y, wgt float64
	}
	docs := make([]doc, len(ex))
	for i, e := range ex {
		d := doc{x: 1, wgt: e.Weight}
		if d.wgt == 0 {
			d.wgt = 1
		}
		if e.Spam {
			d.y = 1
		}
		if len(e.Features) > 0 {
			d.x = 1 / math.Sqrt(float64(len(e.Features)))
		}
		for _, id := range e.Features {
			if j, ok := index[id]; ok {
				d.idx = append(d.idx, j)
			}
		}
		docs[i] = d
	}
	w := make([]float64, len(vocab))
	g2 := make([]float64, len(vocab))
	var b, gb2 float64
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6f67))
	order := make([]int, len(docs))
	for i := range order {
		order[i] = i
	}
	const eps = 1e-8
	for range opt.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			d := &docs[k]
			z := b
			for _, j := range d.idx {
				z += w[j] * d.x
			}
			g := (sigmoid(z) - d.y) * d.wgt
			gb2 += g * g
			b -= opt.Rate * g / (math.Sqrt(gb2) + eps)
			for _, j := range d.idx {
				gj := g*d.x + opt.L2*w[j]
				g2[j] += gj * gj
				w[j] -= opt.Rate * gj / (math.Sqrt(g2[j]) + eps)
			}
		}
	}
	for i, id := range vocab {
		if math.Abs(w[i]) >= 1e-4 {
			ids = append(ids, id)
			weights = append(weights, float32(w[i]))
		}
	}
	return float32(b), ids, weights
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}
